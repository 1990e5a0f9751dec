"""Central's options: the defaults of new zones, the pace of backfills, the projects' quotas.

Registered on import, which is all this module does: it imports nothing but
oslo.config, so :func:`zoneflow.config.setup` can register every package's
options without loading the package (see :mod:`zoneflow.opts`).
"""

from __future__ import annotations

from oslo_config import cfg

CONF = cfg.CONF

central_opts = [
    cfg.StrOpt("default_pool", default="default", help="Pool new zones go to unless told."),
    cfg.IntOpt("default_ttl", default=3600, min=0, help="TTL of a zone's records by default."),
    cfg.IntOpt("default_refresh", default=3600, min=0, help="SOA refresh of new zones."),
    cfg.IntOpt("default_retry", default=600, min=0, help="SOA retry of new zones."),
    cfg.IntOpt("default_expire", default=86400, min=0, help="SOA expire of new zones."),
    cfg.IntOpt("default_minimum", default=3600, min=0, help="SOA minimum (negative TTL)."),
    cfg.FloatOpt(
        "backfill_jobs_per_second",
        default=20.0,
        min=0.1,
        # Read from [storage] before central decided the pace.
        deprecated_group="storage",
        help="When a pool update adds targets or nameservers, the recover-zone jobs that "
        "bring each zone onto them are released to the job relays at most at this rate, "
        "[conductor] upkeep_batch_zones zones at a time (which the relays post as one "
        "recover-zones job). They are upkeep: changes made meanwhile go before them in "
        "zoneflow, and the relays keep at most [conductor] max_upkeep_jobs of them on the "
        "board, so a backfill goes as fast as the targets take it without filling their "
        "own transfer queues ahead of those changes: this rate is only a ceiling "
        "(doc/benchmarks.md, A user's change during a backfill).",
    ),
]
CONF.register_opts(central_opts, group="central")


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


# --- the inspector's recovery pace (issue 15) -------------------------------------------

health_opts = [
    cfg.FloatOpt(
        "target_recovery_jobs_per_second",
        default=20.0,
        min=0.1,
        help="When a target comes back (from DOWN, or out of maintenance), the recover-zone "
        "jobs of the zones it missed are released to the job relays at most at this rate, "
        "[conductor] upkeep_batch_zones zones at a time (which the relays post as one "
        "recover-zones job); like a backfill's, they go on the board [conductor] "
        "max_upkeep_jobs at a time, so a target that missed thousands of zones does not "
        "queue every change made meanwhile behind them, in zoneflow or in its own transfer "
        "queue (see backfill_jobs_per_second).",
    ),
]
CONF.register_opts(health_opts, group="central")
