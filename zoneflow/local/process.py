"""What every local server shares: one subprocess, a work dir and a log.

The functional tests' fixtures, `zoneflow targets up` and `make run` start
their servers through this.

A server runs in its own session (process group), so ``kill()`` reaches the
server and its children and nothing else. Every started server is also
remembered in a module registry that an ``atexit`` hook empties, so a crashed
or interrupted test run does not leave servers holding ports.
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self, TypedDict

from zoneflow import exceptions
from zoneflow.local.ports import wait_for

LOG_TAIL_LINES = 40

_live: set[ServerProcess] = set()


# The names the fixtures have always used.
ServerError = exceptions.LocalServerError
MissingServerBinary = exceptions.MissingServerProgram
ServerStartError = exceptions.ServerStartError


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``path``, or a note that there is no log."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc.strerror})"
    return "\n".join(text.splitlines()[-lines:])


class SpawnOptions(TypedDict, total=False):
    """What a server may add to ``subprocess.Popen``: whom to run as, env."""

    env: dict[str, str]
    user: int
    group: int
    extra_groups: list[int]


class ServerProcess(abc.ABC):
    """A server started as a subprocess in ``workdir``, logging to ``log_path``.

    Subclasses say how to prepare the work dir, which command runs the server
    and when it is ready. ``stop()`` and ``kill()`` keep the work dir, so
    ``start()`` brings the same server back on the same ports with its data;
    only ``close()`` removes the dir (and only if the fixture created it).
    """

    #: Name used in messages, e.g. "named".
    name: str = "server"
    #: Signal for an orderly shutdown.
    stop_signal: signal.Signals = signal.SIGTERM
    #: Seconds an orderly shutdown may take before the group is killed.
    stop_timeout: float = 15.0

    def __init__(
        self,
        *,
        workdir: Path | str | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self._owns_workdir = workdir is None
        if workdir is None:
            workdir = tempfile.mkdtemp(prefix=f"zoneflow-{self.name}-")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}.log"
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None

    # What a subclass provides.

    def prepare(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Write config and initialise data before the (first) start."""

    @abc.abstractmethod
    def command(self) -> list[str]:
        """The argv that runs the server in the foreground."""

    @abc.abstractmethod
    def is_ready(self) -> bool:
        """Whether the server serves; may raise ``not_ready_errors`` meanwhile."""

    def spawn_options(self) -> SpawnOptions:
        """Extra keyword arguments for ``subprocess.Popen``."""
        return {}

    #: Exceptions ``is_ready`` may raise while the server is still coming up.
    not_ready_errors: tuple[type[BaseException], ...] = (OSError,)

    # Life cycle.

    @property
    def running(self) -> bool:
        """Whether the server process is alive (not whether it serves)."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> Self:
        """Start the server and wait until it serves; no-op if it runs."""
        if self.running:
            return self
        self.prepare()
        argv = self.command()
        begin = time.monotonic()
        with self.log_path.open("ab") as log:
            log.write(f"\n=== zoneflow fixture: starting {' '.join(argv)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
                **self.spawn_options(),
            )
        _live.add(self)
        try:
            wait_for(
                self._ready_or_dead,
                timeout=self.start_timeout,
                what=f"{self.name} to serve",
                ignore=self.not_ready_errors,
            )
        except (TimeoutError, ServerStartError) as exc:
            self.kill()
            raise ServerStartError(
                f"{self.name} did not start: {exc}\n"
                f"--- last lines of {self.log_path} ---\n{self.log_tail()}"
            ) from None
        self.startup_seconds = time.monotonic() - begin
        return self

    def _ready_or_dead(self) -> bool:
        assert self.process is not None
        code = self.process.poll()
        if code is not None:
            raise ServerStartError(f"{self.name} exited with status {code}")
        return self.is_ready()

    def stop(self) -> None:
        """Shut the server down in order (kill it if it takes too long)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal_group(self.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=self.stop_timeout)
        self._reap()

    def kill(self) -> None:
        """SIGKILL the server and its children, as a crash would."""
        if self.process is None:
            return
        self._reap()

    def restart(self) -> Self:
        """Stop, then start again on the same ports with the same data."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and remove the work dir the fixture created."""
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self.process is not None
        # Children (PostgreSQL backends) share the group and die with it; a
        # group that is already gone is what we wanted.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def _reap(self) -> None:
        """Kill whatever is left of the group and collect the exit status."""
        assert self.process is not None
        self._signal_group(signal.SIGKILL)
        self.process.wait()
        self.process = None
        _live.discard(self)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return log_tail(self.log_path, lines)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid {self.process.pid}" if self.running and self.process else "stopped"
        return f"<{type(self).__name__} {state} in {self.workdir}>"


def require_program(path_or_name: str) -> str:
    """Absolute path of a program, or ``MissingServerBinary``."""
    # Server programs live in /usr/sbin, which a non-root PATH may lack.
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])
    found = shutil.which(path_or_name, path=search)
    if found is None:
        raise MissingServerBinary(path_or_name)
    return found


def require_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise MissingServerBinary(f"{what} ({path})")
    return path


def run_checked(
    argv: Sequence[str],
    what: str,
    cwd: Path,
    options: SpawnOptions,
    timeout: float = 120.0,
) -> None:
    """Run a one-shot setup command, failing with its output when it fails."""
    try:
        result = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
            cwd=cwd,
            timeout=timeout,
            **options,
        )
    except subprocess.TimeoutExpired as exc:
        raise ServerStartError(f"{what} did not finish within {timeout:g} s") from exc
    if result.returncode != 0:
        raise ServerStartError(f"{what} failed with status {result.returncode}:\n{result.stdout}")


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_live):
        with contextlib.suppress(Exception):
            server.kill()
