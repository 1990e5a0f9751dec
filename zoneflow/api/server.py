"""Serving the API with uvicorn: ``zoneflow api``, or a thread of all-in-one.

The socket is bound before uvicorn starts, so a port already in use is a
clear error at once (uvicorn alone would log it and exit the process).
Jobs: a change made through the API is written with its job to the outbox
(see :mod:`zoneflow.central.zones`). With a ZooKeeper jobboard ``zoneflow
api`` posts them itself the moment they commit (unless ``[api] relay`` is
off); otherwise (zake) the relay of the all-in-one process or of a
conductor posts them. ``[api] workers`` processes serve one socket
(:mod:`zoneflow.api.workers`).
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from types import FrameType
from typing import Any

import uvicorn
from oslo_config import cfg

from zoneflow import exceptions, heartbeat, model
from zoneflow.api import app, options
from zoneflow.storage import db

LOG = logging.getLogger(__name__)
CONF = options.CONF


class ApiServer:
    """The API on one listening socket, served in this thread or another."""

    def __init__(self, host: str | None = None, port: int | None = None) -> None:
        self.host = host or CONF.api.host
        wanted = CONF.api.port if port is None else port
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP named: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose
        # protocol says TCP. With Nagle on, a response written in two parts (headers,
        # body) waits for the client's delayed ACK: 40 ms on every keep-alive request.
        self._socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((self.host, wanted))
        except OSError as exc:
            self._socket.close()
            raise exceptions.InvalidConfig(
                f"the API cannot listen on {self.host}:{wanted}: {exc.strerror}; "
                "change [api] host/port or stop what uses it"
            ) from exc
        self.port = int(self._socket.getsockname()[1])
        config = uvicorn.Config(
            app.create_app(),
            log_config=None,
            access_log=CONF.api.access_log,
            # The app's lifespan sizes its thread pool (app._lifespan).
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def run(self) -> None:
        """Serve until SIGINT/SIGTERM (in the main thread) or stop()."""
        self._server.run(sockets=[self._socket])

    def start(self) -> None:
        """Serve in a thread; return once requests are answered."""
        # The propagation model the status routes read, built before the first request.
        model.start()
        self._thread = threading.Thread(target=self.run, name="api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise exceptions.ZoneflowError(f"the API on {self.url} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            model.stop()
        self._socket.close()


def run_forever(workers: int | None = None) -> None:
    """``zoneflow api``: serve from ``workers`` processes (default ``[api] workers``),
    each posting the jobs of its changes if the board is shared and ``[api] relay``."""
    count = worker_count(workers)
    # Each request's thread may hold a connection at once; so may the relay, the
    # heartbeat and the propagation model.
    db.keep_connections(CONF.api.threads + 3)
    server = ApiServer()
    LOG.info("API v2 listening on %s (%d %s)", server.url, count, _plural(count))
    if count == 1:
        serve(server)
    else:
        from zoneflow.api import workers as api_workers

        api_workers.Workers(lambda: serve(server), count).run()


def worker_count(wanted: int | None = None) -> int:
    """How many processes serve the API: ``wanted`` (``--workers``), else ``[api] workers``."""
    if wanted is None:
        try:
            wanted = int(CONF.api.workers)
        except (cfg.Error, ValueError) as exc:
            why = str(exc).rpartition("is not valid: ")[2] or str(exc)
            raise exceptions.InvalidConfig(
                f"[api] workers in zoneflow.conf is invalid: {why}; give a number of "
                "processes from 1 to 64 (about one per core)"
            ) from exc
    if not 1 <= wanted <= 64:
        raise exceptions.InvalidConfig(
            f"{wanted} API workers: give a number of processes from 1 to 64 (about one per core)"
        )
    return wanted


def _plural(count: int) -> str:
    return "process" if count == 1 else "processes"


def serve(server: ApiServer) -> None:
    """One process's share of ``zoneflow api``: requests on ``server``'s socket, its
    heartbeat, its propagation model and its relay, until SIGTERM or SIGINT."""
    relay = _start_relay()
    beat = heartbeat.for_api(server)
    beat.start()
    # Built by the first status read this process serves: a worker that serves none
    # does not follow every event (issue 17 counted it in each create's CPU).
    model.start_when_read()
    # uvicorn raises again the signal it shut down for once it is done: SIGTERM's
    # default would end the process there, before its heartbeat says DOWN.
    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        server.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
        model.stop()
        beat.stop()
        if relay is not None:
            _stop_relay(relay)


def _exit(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def _start_relay() -> Any:
    if CONF.jobboard.backend != "zookeeper" or not CONF.api.relay:
        return None
    from zoneflow.central import changes as central_changes
    from zoneflow.engine.relay import OutboxRelay
    from zoneflow.taskflow_adapter import jobboard, persistence

    backend = persistence.get_backend()
    relay = OutboxRelay(
        jobboard.connect(backend, name="zoneflow-api"),
        backend,
        max_change_jobs=CONF.api.relay_max_change_jobs,
        upkeep=False,
    )
    central_changes.on_change(relay.wake)
    relay.start()
    return relay


def _stop_relay(relay: Any) -> None:
    from zoneflow.taskflow_adapter import jobboard

    relay.stop()
    jobboard.close(relay.board)
