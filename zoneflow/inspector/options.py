"""The inspector's options (see zoneflow.inspector and doc/operations.md).

Registered on import, which is all this module does: it imports nothing but
oslo.config, so :func:`zoneflow.config.setup` can register every package's
options without loading the package (see :mod:`zoneflow.opts`).
"""

from __future__ import annotations

from oslo_config import cfg

CONF = cfg.CONF

inspector_opts = [
    cfg.BoolOpt(
        "enabled",
        default=True,
        help="Run the inspector inside 'zoneflow all-in-one' ('zoneflow inspector' runs it "
        "on its own).",
    ),
    cfg.FloatOpt(
        "interval",
        default=0.25,
        min=0.05,
        help="Seconds between two health checks of each target (a DNS query to the address "
        "its nameserver answers on).",
    ),
    cfg.FloatOpt(
        "timeout",
        default=0.2,
        min=0.01,
        help="Seconds a health check waits for an answer. Any DNS answer, even REFUSED, "
        "means alive; no answer in time, or the port refused, is a miss. Keep it below "
        "interval.",
    ),
    cfg.IntOpt(
        "misses",
        default=3,
        min=1,
        help="Consecutive misses after which a target is DOWN and the alarm raised. The "
        "alarm follows the failure within about interval x misses + timeout seconds "
        "(0.95 s with the defaults).",
    ),
    cfg.IntOpt(
        "answers",
        default=2,
        min=1,
        help="Consecutive answers after which a DOWN target is UP again and the zones it "
        "missed are recovered.",
    ),
    cfg.FloatOpt(
        "refresh_interval",
        default=10.0,
        min=0.1,
        help="Seconds between two reads of the targets and of each pool's zones (the map "
        "the inspector keeps); a zone created or deleted refreshes the map at once.",
    ),
    cfg.FloatOpt(
        "catch_up_retry",
        default=30.0,
        min=1.0,
        help="Seconds after which a target whose maintenance ended, and which still "
        "misses zones, gets their recover-zone jobs again (one of them may have failed).",
    ),
    cfg.IntOpt(
        "concurrency",
        default=16,
        min=1,
        help="Health checks in flight at once.",
    ),
]
CONF.register_opts(inspector_opts, group="inspector")
