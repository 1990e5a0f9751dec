"""The engines' options: the shared executor's threads and the metrics a conductor serves.

Registered on import, which is all this module does: it imports nothing but
oslo.config, so :func:`zoneflow.config.setup` can register every package's
options without loading the package (see :mod:`zoneflow.opts`).
"""

from __future__ import annotations

from oslo_config import cfg

CONF = cfg.CONF

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


relay_opts = [
    cfg.IntOpt(
        "batch_zones",
        default=25,
        min=1,
        help="Most zones one job carries: a relay puts the creates, the updates or the "
        "deletes of one pool and one project it claims at once into jobs of up to this "
        "many zones (create-zones, update-zones, delete-zones; recoveries in "
        "recover-zones), each job costing the "
        "conductor about what one zone's does. At low load a claim holds one change, so "
        "a job holds one zone. 1: one job per zone. (At 20 changes/s on 8 BIND9, 25 "
        "served every change sooner than 10 did, in fewer, fuller jobs: "
        "doc/benchmarks.md, Load.)",
    ),
    cfg.IntOpt(
        "max_change_jobs",
        default=8,
        min=0,
        help="Most jobs of users' changes a relay keeps on the board, waiting or "
        "running (as its board counts them; several relays may each post one past it "
        "at once). Past it, changes wait in the outbox until a job ends, and the next "
        "job carries all a zone's changes and up to batch_zones zones: under load "
        "the conductors run fewer, fuller jobs and spend less CPU per change. At low "
        "load every change goes at once. 0: no limit (every change goes at once).",
    ),
    cfg.IntOpt(
        "upkeep_batch_zones",
        default=100,
        min=1,
        help="Most zones one upkeep job carries (a backfill's, a returning target's, the "
        "producer's recoveries: recover-zones). Larger than batch_zones: nobody waits on "
        "each of these zones, and a job's own cost is spread over more of them (a backfill "
        "onto one BIND9 took half the conductors' CPU a zone in jobs of 100 as in jobs of "
        "25: doc/benchmarks.md).",
    ),
    cfg.IntOpt(
        "max_upkeep_jobs",
        default=1,
        min=0,
        help="Most upkeep jobs (a pool's backfill, a returning target's catch-up, the "
        "producer's recoveries, a retired target's drain) a relay keeps on the board, "
        "waiting or running (as its board counts them). Released upkeep waits in the "
        "outbox until one ends: a backfill goes as fast as the nameservers take its zones, "
        "and never queues thousands of zones in their transfer queues ahead of the "
        "changes made meanwhile (doc/benchmarks.md). Raise it for targets far away, or "
        "for pools that backfill at once: each job waits for its slowest target. 0: no "
        "limit (the release pace alone: [central] backfill_jobs_per_second).",
    ),
]
CONF.register_opts(relay_opts, group="conductor")


engine_opts = [
    cfg.IntOpt(
        "workers",
        default=64,
        min=1,
        help="Threads shared by all flows of a process (tasks mostly wait on the network).",
    ),
]
CONF.register_opts(engine_opts, group="engine")
