"""The jobboard's options: which ZooKeeper (or zake) holds the jobs, and how long a
session lasts.

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
