"""The configuration every module shares, and the options of zoneflow's top-level modules.

Each package registers its own options in its ``options`` module
(:mod:`zoneflow.api.options`, :mod:`zoneflow.mdns.options`...), beside the
code that reads them. Those of a module outside any package live here: the
heartbeat every service sends (:mod:`zoneflow.heartbeat`). Like the
packages' modules, this one imports nothing but oslo.config and does nothing
on import but register; :mod:`zoneflow.opts` lists every option.
"""

from __future__ import annotations

from oslo_config import cfg

CONF = cfg.CONF

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
