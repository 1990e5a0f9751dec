"""The producer's options (``[producer]``): its shards and each periodic pass.

Registered on import, which is all this module does: it imports nothing but
oslo.config (see :mod:`zoneflow.opts`). Where the producers meet in
ZooKeeper comes from ``[jobboard]`` (hosts, session_timeout), so one
setting says where ZooKeeper is.
"""

from __future__ import annotations

from oslo_config import cfg

CONF = cfg.CONF

producer_opts = [
    cfg.IntOpt(
        "shards",
        default=64,
        min=1,
        max=65536,
        help="Shards the zones are split into (a hash of the zone id). Every producer of a "
        "deployment must use the same number; more shards than producers spread them evenly.",
    ),
    cfg.StrOpt(
        "shard_path",
        default="/zoneflow/producer/shards",
        help="ZooKeeper path where the running producers share out the shards.",
    ),
    cfg.FloatOpt(
        "rebalance_wait",
        default=1.0,
        min=0.1,
        max=60.0,
        help="Seconds the producers wait for the set of producers to settle before sharing "
        "the shards out again (a producer joined, or left or died).",
    ),
    cfg.FloatOpt(
        "recovery_interval",
        default=30.0,
        min=0,
        help="Seconds between recovery passes: zones in ERROR, or PENDING for longer than "
        "pending_age, get recover-zone jobs (0: no recovery).",
    ),
    cfg.FloatOpt(
        "pending_age",
        default=300.0,
        min=1,
        help="Seconds a zone may stay PENDING with no job in flight for it before the recovery "
        "pass posts a recover-zone job.",
    ),
    cfg.IntOpt(
        "recovery_batch",
        default=100,
        min=1,
        help="Most recover-zone jobs one pass (recovery or audit) posts; the rest wait for "
        "the next pass, so that a mass failure does not flood the conductors.",
    ),
    cfg.FloatOpt(
        "audit_interval",
        default=600.0,
        min=0,
        help="Seconds between audits: every target is asked for the SOA of every zone it "
        "should serve, and drift is repaired (0: no audit).",
    ),
    cfg.IntOpt(
        "audit_batch",
        default=10000,
        min=1,
        help="Zones asked about per batch of an audit; between batches a producer checks it "
        "still owns its shards.",
    ),
    cfg.IntOpt(
        "audit_in_flight",
        default=500,
        min=1,
        max=30000,
        help="SOA questions outstanding at once on each target during an audit.",
    ),
    cfg.FloatOpt(
        "audit_timeout",
        default=1.0,
        min=0.01,
        help="Seconds an audit waits for a target's answer before asking again.",
    ),
    cfg.IntOpt(
        "audit_retries",
        default=2,
        min=0,
        help="Times an audit asks a silent target again before leaving the zone unjudged.",
    ),
    cfg.FloatOpt(
        "purge_interval",
        default=3600.0,
        min=0,
        help="Seconds between purges of deleted zones and ended jobs past their retention "
        "(0: no purge).",
    ),
    cfg.FloatOpt(
        "deleted_zone_retention",
        default=7 * 24 * 3600.0,
        min=0,
        help="Seconds a deleted zone's row is kept. Until then the audit removes it from a "
        "target that still serves it; after, it is forgotten. Ended jobs are kept for "
        "[conductor] job_retention.",
    ),
]
CONF.register_opts(producer_opts, group="producer")
