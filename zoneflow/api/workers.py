"""Several processes serving the API on its one listening socket (``[api] workers``).

One process accepts at most what one core runs, its GIL held by whichever
request runs Python. The parent binds the socket (:class:`ApiServer`), forks
the workers and then only watches them: it starts no thread and opens no
database connection, so each fork, a replacement's too, copies a process of
one thread that shares nothing with its siblings but the listening socket.
Each worker is what a one-process ``zoneflow api`` is (its own heartbeat row,
propagation model and relay); the kernel hands each new connection to a
worker waiting in accept, so a busy worker takes fewer.

SIGTERM or SIGINT to the parent sends SIGTERM to every worker: each finishes
the requests it holds (uvicorn's graceful shutdown) and writes its heartbeat
DOWN; one still running after :data:`STOP_WAIT` is killed. A worker that
exits by itself is replaced, not sooner than :data:`RESTART_PAUSE` after the
one it replaces started, so a worker that cannot start does not spin.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType

LOG = logging.getLogger(__name__)

# Seconds the workers get to finish their requests and say DOWN once asked to stop.
STOP_WAIT = 15.0
# Least seconds between the start of a worker and the start of its replacement.
RESTART_PAUSE = 1.0
# The signals that stop the API.
_STOPS = (signal.SIGTERM, signal.SIGINT)
# How often the parent looks whether stopping workers have gone.
_REAP_INTERVAL = 0.05


class Workers:
    """``count`` forked processes, each running ``serve`` until it returns."""

    def __init__(self, serve: Callable[[], None], count: int) -> None:
        self._serve = serve
        self.count = count
        # pid -> when it started
        self.children: dict[int, float] = {}
        self._stopping = False
        # Set while the parent waits for a worker to exit, which a stop interrupts.
        self._waiting = False

    def run(self) -> None:
        """Start the workers and keep ``count`` running until SIGTERM or SIGINT."""
        previous = {sig: signal.signal(sig, self._stop) for sig in _STOPS}
        try:
            for _ in range(self.count):
                self._start()
            while not self._stopping:
                try:
                    self._waiting = True
                    exited = os.wait()
                except _Stopped:
                    break
                finally:
                    self._waiting = False
                self._replace(*exited)
            self._reap(time.monotonic() + STOP_WAIT)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for pid in self.children:  # past STOP_WAIT, or the parent itself failed
                _signal(pid, signal.SIGKILL)

    def _start(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        # Held back over the fork: the parent's handler must never run in a worker.
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
        try:
            pid = os.fork()
            if pid == 0:
                for sig in _STOPS:
                    signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)
                os._exit(self._child())
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)
        self.children[pid] = time.monotonic()

    def _child(self) -> int:
        """In the worker: serve, and say how it ended as an exit status."""
        code = 0
        try:
            self._serve()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            LOG.exception("API worker %d failed", os.getpid())
            code = 1
        finally:
            # os._exit skips the interpreter's exit, which would flush these.
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        return code

    def _replace(self, pid: int, status: int) -> None:
        """A worker exited while the parent was not stopping: start another."""
        started = self.children.pop(pid, None)
        if started is None or self._stopping:
            return
        LOG.warning("API worker %d exited (%s): starting another", pid, _described(status))
        pause = started + RESTART_PAUSE - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        if not self._stopping:
            self._start()

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        if self._stopping:
            return
        self._stopping = True
        LOG.info("stopping %d API workers (%s)", len(self.children), signal.Signals(signum).name)
        for pid in self.children:
            _signal(pid, signal.SIGTERM)
        if self._waiting:
            # os.wait would go on waiting for a worker that may not stop by STOP_WAIT.
            raise _Stopped

    def _reap(self, deadline: float) -> None:
        """Wait for the stopping workers until ``deadline``."""
        while self.children and time.monotonic() < deadline:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:  # every one reaped already
                self.children.clear()
                return
            if pid == 0:
                time.sleep(_REAP_INTERVAL)
                continue
            self.children.pop(pid, None)
            if status != 0:
                LOG.warning("API worker %d ended %s", pid, _described(status))
        if self.children:
            LOG.warning(
                "API workers %s still running %.0f s after SIGTERM: killing them",
                sorted(self.children),
                STOP_WAIT,
            )


class _Stopped(Exception):
    """Raised in the parent's wait for a worker when it is asked to stop."""


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
        os.kill(pid, sig)


def _described(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
