"""The jobboard: ZooKeeper through kazoo for real deployments, zake in one process.

With ``[jobboard] backend = zake`` the board lives in this process's memory
(all-in-one mode and unit tests); every board opened in the process shares
it. With ``zookeeper`` the board is TaskFlow's ZooKeeper jobboard, shared by
every conductor and API process of the deployment.
"""

from __future__ import annotations

import threading
from typing import Any

from kazoo import exceptions as kazoo_exc
from kazoo.handlers import threading as kazoo_threading
from oslo_config import cfg
from taskflow import exceptions as tf_exc
from taskflow.jobs import backends
from zake import fake_client, fake_storage

from zoneflow import exceptions

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

_zake_lock = threading.Lock()
_zake_storage: fake_storage.FakeStorage | None = None


def _zake_client() -> fake_client.FakeClient:
    global _zake_storage
    with _zake_lock:
        if _zake_storage is None:
            _zake_storage = fake_storage.FakeStorage(kazoo_threading.SequentialThreadingHandler())
        return fake_client.FakeClient(storage=_zake_storage)


def reset_zake() -> None:
    """Start the in-process board afresh (tests)."""
    global _zake_storage
    with _zake_lock:
        _zake_storage = None


def describe() -> str:
    if CONF.jobboard.backend == "zake":
        return "the in-process zake jobboard"
    return f"ZooKeeper at {CONF.jobboard.hosts}"


def connect(persistence: Any, *, name: str = "zoneflow") -> Any:
    """Open and connect a jobboard; raise JobboardUnavailable with advice if it can't."""
    conf: dict[str, Any] = {"board": "zookeeper", "path": CONF.jobboard.path}
    client = None
    if CONF.jobboard.backend == "zake":
        client = _zake_client()
    else:
        conf["hosts"] = CONF.jobboard.hosts
        conf["timeout"] = CONF.jobboard.session_timeout
    board = backends.fetch(name, conf, client=client, persistence=persistence)
    try:
        board.connect(timeout=CONF.jobboard.connect_timeout)
    except (tf_exc.JobFailure, kazoo_exc.KazooException, OSError) as exc:
        board.close()
        raise exceptions.JobboardUnavailable(
            f"cannot reach {describe()} (the jobboard): {_cause(exc)}; start ZooKeeper or fix "
            "[jobboard] hosts in zoneflow.conf (ZooKeeper 3.5+ also needs "
            "4lw.commands.whitelist=* in zoo.cfg)"
        ) from exc
    return board


def _cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc) or type(exc).__name__
