"""The REST API's options: where it listens, who calls it, how its pages and links read.

Registered on import, which is all this module does: it imports nothing but
oslo.config, so :func:`zoneflow.config.setup` can register every package's
options without loading the package (see :mod:`zoneflow.opts`).
"""

from __future__ import annotations

from oslo_config import cfg

CONF = cfg.CONF

server_opts = [
    cfg.HostAddressOpt("host", default="127.0.0.1", help="Address the API listens on."),
    cfg.PortOpt("port", default=9001, help="TCP port the API listens on (Designate's)."),
    cfg.BoolOpt("access_log", default=True, help="Log one line per request (uvicorn.access)."),
    # Issue 17: one process's GIL caps what it accepts near one core; several
    # processes on the one listening socket use every core.
    cfg.IntOpt(
        "workers",
        default=1,
        min=1,
        max=64,
        help="Processes serving the API on its one port (``zoneflow api`` only; "
        "all-in-one serves it from one thread). Each accepts connections from the "
        "same listening socket and runs its own heartbeat, propagation model and, with "
        "relay on, job relay; about one per core.",
    ),
    cfg.IntOpt(
        "threads",
        default=16,
        min=1,
        max=256,
        help="Requests each API process runs at once: each runs in a thread of its own "
        "and may hold a database connection, so the process keeps this many connections "
        "open (unless [database] max_pool_size is set). Requests past it wait for a "
        "thread; event streams wait in threads of their own.",
    ),
    cfg.BoolOpt(
        "relay",
        default=True,
        help="With a ZooKeeper jobboard, ``zoneflow api`` posts the jobs of the changes "
        "it accepts itself, the moment they commit. False leaves them to the conductors' "
        "relays ([conductor] relay), which find them within their interval: the API "
        "processes then spend no CPU on posting.",
    ),
    cfg.IntOpt(
        "relay_max_change_jobs",
        default=1,
        min=1,
        help="With relay on: the API posts a change's job itself while the board holds "
        "fewer jobs of users' changes than this; past it the change waits for a "
        "conductor's relay, which takes every change waiting at each look ([conductor] "
        "relay_interval) and puts them in jobs of up to batch_zones zones. So an idle "
        "service starts a change's job the moment it commits, and a busy one runs fuller "
        "jobs (less CPU a change: doc/benchmarks.md, orchestration capacity). The API "
        "leaves upkeep jobs (backfills, recoveries) to the conductors' relays.",
    ),
]
CONF.register_opts(server_opts, group="api")


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


view_opts = [
    cfg.StrOpt(
        "base_url",
        help="URL clients reach the API at, used in the links of every response (set it "
        "behind a proxy, e.g. https://dns.example.net). Default: the scheme and Host "
        "header of each request.",
    ),
]
CONF.register_opts(view_opts, group="api")


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
