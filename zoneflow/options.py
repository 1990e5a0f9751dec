"""Every option zoneflow reads from zoneflow.conf, registered on import.

The options live here, apart from the code that reads them, so that reading
the configuration costs only oslo.config: ``zoneflow zone list`` need not
import TaskFlow, FastAPI and kazoo to learn their options (it took over a
second). Each list names the module that uses it; :mod:`zoneflow.opts`
lists them all for oslo-config-generator.
"""

from __future__ import annotations

from oslo_config import cfg

CONF = cfg.CONF

# Read by zoneflow.api.server.
server_opts = [
    cfg.HostAddressOpt("host", default="127.0.0.1", help="Address the API listens on."),
    cfg.PortOpt("port", default=9001, help="TCP port the API listens on (Designate's)."),
    cfg.BoolOpt("access_log", default=True, help="Log one line per request (uvicorn.access)."),
]
CONF.register_opts(server_opts, group="api")


# Read by zoneflow.api.auth.
auth_opts = [
    cfg.StrOpt(
        "auth_strategy",
        default="noauth",
        help="How callers are identified: keystone validates each request's X-Auth-Token "
        "with keystonemiddleware's auth_token, configured in [keystone_authtoken] as for "
        "Designate; noauth takes the project and roles from request headers as Designate's "
        "noauth mode does (X-Auth-Project-ID, X-Roles): trusted networks and tests only.",
    ),
]
CONF.register_opts(auth_opts, group="api")


# Read by zoneflow.api.views.
view_opts = [
    cfg.StrOpt(
        "base_url",
        help="URL clients reach the API at, used in the links of every response (set it "
        "behind a proxy, e.g. https://dns.example.net). Default: the scheme and Host "
        "header of each request.",
    ),
]
CONF.register_opts(view_opts, group="api")


# Read by zoneflow.api.paging.
paging_opts = [
    cfg.IntOpt("default_limit", default=20, min=1, help="Items per page when no limit is given."),
    cfg.IntOpt(
        "max_limit",
        default=1000,
        min=1,
        help="Most items one page holds (limit=max asks for this many; more is cut to it).",
    ),
]
CONF.register_opts(paging_opts, group="api")

import_opts = [
    cfg.IntOpt(
        "max_import_size",
        default=4 * 1024 * 1024,
        min=1024,
        help="Largest zone file a zone import accepts, in bytes (4 MiB: about 120,000 "
        "records). A larger body is refused with 413 before it is read in full.",
    ),
]
CONF.register_opts(import_opts, group="api")


# Read by zoneflow.central.api.
central_opts = [
    cfg.StrOpt("default_pool", default="default", help="Pool new zones go to unless told."),
    cfg.IntOpt("default_ttl", default=3600, min=0, help="TTL of a zone's records by default."),
    cfg.IntOpt("default_refresh", default=3600, min=0, help="SOA refresh of new zones."),
    cfg.IntOpt("default_retry", default=600, min=0, help="SOA retry of new zones."),
    cfg.IntOpt("default_expire", default=86400, min=0, help="SOA expire of new zones."),
    cfg.IntOpt("default_minimum", default=3600, min=0, help="SOA minimum (negative TTL)."),
]
CONF.register_opts(central_opts, group="central")


# Read by zoneflow.central.quotas.
quota_opts = [
    cfg.IntOpt("zones", default=10, min=-1, help="Zones a project may have (-1: no limit)."),
    cfg.IntOpt(
        "zone_recordsets", default=500, min=-1, help="Recordsets one zone may hold (-1: no limit)."
    ),
    cfg.IntOpt(
        "zone_records",
        default=500,
        min=-1,
        help="Records one zone may hold, over all its recordsets (-1: no limit).",
    ),
    cfg.IntOpt(
        "recordset_records",
        default=20,
        min=-1,
        help="Records one recordset may hold (-1: no limit).",
    ),
    cfg.IntOpt(
        "api_export_size",
        default=1000,
        min=-1,
        help="Records a zone may hold and still be exported through the API (-1: no limit).",
    ),
]
CONF.register_opts(quota_opts, group="quota")


# Read by zoneflow.heartbeat.
heartbeat_opts = [
    cfg.FloatOpt("interval", default=10.0, min=0.1, help="Seconds between a service's heartbeats."),
    cfg.FloatOpt(
        "timeout",
        default=30.0,
        min=0.1,
        help="A service whose last heartbeat is older than this many seconds is shown DOWN.",
    ),
    cfg.FloatOpt(
        "forget_after",
        default=86400.0,
        min=1,
        help="Seconds after its last heartbeat that a service's status is removed.",
    ),
]
CONF.register_opts(heartbeat_opts, group="heartbeat")


# Read by zoneflow.taskflow_adapter.jobboard.
jobboard_opts = [
    cfg.StrOpt(
        "backend",
        default="zake",
        choices=["zake", "zookeeper"],
        help="zake: in-process board (all-in-one, tests); zookeeper: shared ZooKeeper board.",
    ),
    cfg.StrOpt("hosts", default="127.0.0.1:2181", help="ZooKeeper hosts, host:port[,host:port]."),
    cfg.StrOpt("path", default="/zoneflow/jobs", help="ZooKeeper path of the board."),
    cfg.FloatOpt(
        "session_timeout",
        default=10.0,
        min=1.0,
        help="ZooKeeper session timeout: how long a dead conductor holds its jobs.",
    ),
    cfg.FloatOpt("connect_timeout", default=5.0, min=0.5, help="Seconds to wait for ZooKeeper."),
]
CONF.register_opts(jobboard_opts, group="jobboard")


# Read by zoneflow.conductor.daemon.
conductor_opts = [
    cfg.StrOpt("name", help="Name this conductor claims jobs under (default: host-pid)."),
    cfg.IntOpt("max_jobs", default=32, min=1, help="Jobs one conductor runs at once."),
    cfg.FloatOpt(
        "wait_timeout",
        default=0.02,
        min=0.001,
        help="Seconds between looks at the board when idle: the latency of picking up a job.",
    ),
    cfg.BoolOpt("relay", default=True, help="Also post jobs from the outbox table."),
    cfg.IntOpt(
        "job_retention",
        default=7 * 24 * 3600,
        min=0,
        help="Seconds after it was posted that an ended job's logbook is kept (for "
        "'zoneflow job show') before the purge removes it. Waiting and running jobs are "
        "never purged.",
    ),
    cfg.IntOpt(
        "purge_interval",
        default=3600,
        min=0,
        help="Seconds between purges of old job logbooks (0: never purge).",
    ),
    cfg.IntOpt(
        "max_job_attempts",
        default=3,
        min=1,
        help="Runs of one job (including runs whose conductor died) before it is given up: "
        "it ends as FAILURE and its zone goes to ERROR.",
    ),
]
CONF.register_opts(conductor_opts, group="conductor")


# Read by zoneflow.engine.metrics.
metrics_opts = [
    cfg.PortOpt(
        "metrics_port",
        default=0,
        help="Serve Prometheus metrics on this port (0: do not serve). "
        "Each conductor process needs its own port.",
    ),
    cfg.HostAddressOpt("metrics_host", default="127.0.0.1", help="Address for metrics_port."),
]
CONF.register_opts(metrics_opts, group="conductor")


# Read by zoneflow.engine.executor.
engine_opts = [
    cfg.IntOpt(
        "workers",
        default=64,
        min=1,
        help="Threads shared by all flows of a process (tasks mostly wait on the network).",
    ),
]
CONF.register_opts(engine_opts, group="engine")


# Read by zoneflow.flows.tasks.
flow_opts = [
    cfg.IntOpt(
        "target_attempts",
        default=3,
        min=1,
        help="Tries of one action on one target before it counts as failed.",
    ),
    cfg.FloatOpt(
        "target_retry_delay",
        default=0.5,
        min=0,
        help="Seconds between tries on one target (doubles each try).",
    ),
    cfg.FloatOpt(
        "poll_interval",
        default=0.05,
        min=0.01,
        help="Seconds between SOA queries while waiting for a nameserver.",
    ),
    cfg.FloatOpt(
        "poll_timeout",
        default=30.0,
        min=0.1,
        help="Seconds a nameserver gets to serve a change before it counts as failed.",
    ),
    cfg.FloatOpt(
        "query_timeout", default=1.0, min=0.05, help="Seconds one SOA query or NOTIFY may take."
    ),
    cfg.FloatOpt(
        "database_wait",
        default=30.0,
        min=0,
        help="Seconds a task waits for the database to come back (a restart, a failover) "
        "before it fails, and its job is reverted.",
    ),
    cfg.FloatOpt(
        "renotify_interval",
        default=1.0,
        min=0.1,
        help="Seconds between repeated NOTIFYs while a nameserver lags.",
    ),
]
CONF.register_opts(flow_opts, group="flows")


# Read by zoneflow.mdns.server.
mdns_opts = [
    cfg.HostAddressOpt("host", default="127.0.0.1", help="Address mdns listens on (UDP and TCP)."),
    cfg.PortOpt("port", default=5354, help="Port mdns listens on; 0 picks a free one."),
    cfg.FloatOpt(
        "tcp_timeout",
        default=10.0,
        min=0.1,
        help="Seconds a TCP client may stay idle, or take to send a query or read a reply, "
        "before mdns closes its connection.",
    ),
    cfg.IntOpt(
        "threads",
        default=8,
        min=1,
        help="Threads answering requests (each storage read runs on one of them).",
    ),
    cfg.IntOpt(
        "xfr_message_size",
        default=20480,
        min=512,
        max=65535,
        help="Largest message of a zone transfer, in bytes. BIND's transfer-message-size "
        "default: big enough to carry hundreds of records, small enough to keep "
        "name compression effective and memory per message low.",
    ),
    cfg.IntOpt(
        "snapshot_cache_size",
        default=16,
        min=0,
        help="Rendered zones kept in memory, each for one serial: the secondaries of a "
        "pool transferring one change render it once.",
    ),
    cfg.ListOpt(
        "allow_transfer",
        default=["127.0.0.0/8", "::1/128"],
        help="Networks (CIDR) whose hosts may transfer zones (AXFR, IXFR); others get "
        "REFUSED. List your nameservers' addresses here.",
    ),
    cfg.ListOpt(
        "allow_notify",
        default=["127.0.0.0/8", "::1/128"],
        help="Networks (CIDR) whose NOTIFYs mdns records; others get REFUSED.",
    ),
    cfg.FloatOpt(
        "notify_rate",
        default=5.0,
        min=0.1,
        help="NOTIFYs a second processed per source address and zone, past a burst of "
        "notify_burst. Past it the newest one waits for its turn and older waiting ones "
        "are dropped, so the last serial announced is always recorded and a flood does "
        "no database work (UDP; over TCP each NOTIFY waits for its turn).",
    ),
    cfg.IntOpt(
        "notify_burst",
        default=10,
        min=1,
        help="NOTIFYs per source address and zone processed at once before notify_rate applies.",
    ),
    cfg.BoolOpt(
        "require_tsig",
        default=False,
        help="Refuse every unsigned zone transfer, also for pools whose targets name no "
        "tsig_key_name (those require their key in any case).",
    ),
]
CONF.register_opts(mdns_opts, group="mdns")


# Read by zoneflow.storage.api.
storage_opts = [
    cfg.IntOpt(
        "zone_change_history",
        default=200,
        min=1,
        help="Changes kept per zone for IXFR. A secondary further behind than this gets a "
        "full transfer (AXFR) instead of the differences.",
    ),
    cfg.IntOpt(
        "transfer_batch_size",
        default=1000,
        min=10,
        help="Records fetched from the database at a time while a zone is transferred, so "
        "a large zone is never held in memory whole.",
    ),
    cfg.FloatOpt(
        "backfill_jobs_per_second",
        default=10.0,
        min=0.1,
        help="When a pool update adds targets or nameservers, the recover-zone jobs that "
        "bring each zone onto them are released to the job relays at this rate, so changes "
        "made meanwhile are not queued behind thousands of them. Keep it below what the "
        "conductors get through.",
    ),
]
CONF.register_opts(storage_opts, group="storage")


# Read by zoneflow.dns.tsig.
tsig_opts = [
    cfg.MultiStrOpt(
        "key",
        default=[],
        secret=True,
        help="A TSIG key as NAME:ALGORITHM:SECRET with the secret in base64, e.g. "
        "'transfer-key:hmac-sha256:c2VjcmV0...'; one line per key. Algorithms: "
        "hmac-sha256 (advised), hmac-sha384, hmac-sha512, hmac-sha224, hmac-sha1, hmac-md5.",
    ),
]
CONF.register_opts(tsig_opts, group="tsig")
