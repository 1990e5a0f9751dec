"""Storage's options: what the database keeps of a zone's and a catalog's history, and
how it reads a zone out.

Registered on import, which is all this module does: it imports nothing but
oslo.config, so :func:`zoneflow.config.setup` can register every package's
options without loading the package (see :mod:`zoneflow.opts`).
"""

from __future__ import annotations

from oslo_config import cfg

CONF = cfg.CONF

storage_opts = [
    cfg.IntOpt(
        "zone_change_history",
        default=200,
        min=1,
        help="Changes kept per zone for IXFR. A secondary further behind than this gets a "
        "full transfer (AXFR) instead of the differences.",
    ),
    cfg.IntOpt(
        "catalog_change_history",
        default=1000,
        min=1,
        help="Members that joined or left a pool's catalog zone, kept for IXFR. A catalog "
        "consumer further behind than this gets the whole catalog (AXFR) instead.",
    ),
    cfg.IntOpt(
        "transfer_batch_size",
        default=1000,
        min=10,
        help="Records fetched from the database at a time while a zone is transferred, so "
        "a large zone is never held in memory whole.",
    ),
]
CONF.register_opts(storage_opts, group="storage")
