"""The conductor's options: the jobboard it claims jobs from, and how it runs them.

Registered on import, which is all this module does: it imports nothing but
oslo.config, so :func:`zoneflow.config.setup` can register every package's
options without loading the package (see :mod:`zoneflow.opts`).
"""

from __future__ import annotations

from oslo_config import cfg

CONF = cfg.CONF

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
