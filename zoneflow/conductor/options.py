"""The conductor's options: how it runs the jobs it claims (the jobboard's are
:mod:`zoneflow.taskflow_adapter.options`).

Registered on import, which is all this module does: it imports nothing but
oslo.config, so :func:`zoneflow.config.setup` can register every package's
options without loading the package (see :mod:`zoneflow.opts`).
"""

from __future__ import annotations

from oslo_config import cfg

CONF = cfg.CONF

conductor_opts = [
    cfg.StrOpt("name", help="Name this conductor claims jobs under (default: host-pid)."),
    cfg.IntOpt("max_jobs", default=32, min=1, help="Jobs one conductor runs at once."),
    cfg.IntOpt(
        "upkeep_jobs",
        min=1,
        help="Of max_jobs, how many upkeep jobs (a pool's backfill, a returning target's "
        "catch-up, the producer's recoveries, a retired target's drain) one conductor runs "
        "at once; the other slots are kept for users' changes, which then never wait for "
        "a backfill job to end. Default: three quarters of max_jobs.",
    ),
    cfg.FloatOpt(
        "wait_timeout",
        default=0.5,
        min=0.001,
        help="Seconds between two looks at the board when nothing wakes the conductor. "
        "Any change on the board (a job posted, claimed, released or ended) and a "
        "slot freed wake it at once, so this is not the latency of picking up a job: "
        "it is how soon a claim that failed is tried again. Shorter costs an idle "
        "conductor CPU for every look.",
    ),
    cfg.BoolOpt("relay", default=True, help="Also post jobs from the outbox table."),
    cfg.FloatOpt(
        "relay_interval",
        default=0.2,
        min=0.01,
        help="Seconds between two looks of the conductor's relay at the outbox table. "
        "A change made through the CLI or the API is posted by them at once; this is "
        "how long one they could not post waits at most. Longer: fewer, fuller claims "
        "(more zones per job, see batch_zones) and more latency for those.",
    ),
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
        help="Failed runs of one job (its flow raised an error that hands it back, such as "
        "the database failing) before it is given up: it ends as FAILURE and its zone goes "
        "to ERROR. Runs lost with their conductor count apart (max_lost_attempts).",
    ),
    cfg.IntOpt(
        "max_lost_attempts",
        default=10,
        min=1,
        help="Runs of one job lost with their conductor (it died, or lost its ZooKeeper "
        "session, mid-run) before the job is given up. Larger than max_job_attempts: a "
        "lost run says more about the conductor than about the job.",
    ),
    cfg.IntOpt(
        "max_lost_at_same_step",
        default=3,
        min=1,
        help="Runs in a row lost with their conductor at the same step, the flow left as "
        "the run before left it, before the job is given up as one that takes its "
        "conductor down there every time (a poison job).",
    ),
]
CONF.register_opts(conductor_opts, group="conductor")
