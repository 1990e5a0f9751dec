"""zoneflow processes forked from one that has imported zoneflow already.

A functional test runs hundreds of ``zoneflow`` commands and daemons as
processes, and each spent about a second of CPU importing its modules
(SQLAlchemy, oslo.db, TaskFlow, FastAPI...) before doing anything: the
largest cost of the suite. A fork server imports them once per test worker
and forks each process from there. A forked process is still a process of
its own, with its own pid, session, environment, working directory and log,
started by ``zoneflow.cli``'s own entry point with its arguments, and killed
with real signals; only the interpreter's start and the imports are shared.
What a fork server cannot show, a fresh interpreter still does:
tests/functional/test_wheel.py runs the installed ``zoneflow`` command, and
test_spine.py and the demo's tests start their processes the usual way.

The server (``python -m tests.functional.forkserver``) reads one JSON
request a line on stdin, forks, and answers on stdout with the child's pid;
it reaps its children and reports each one's exit status as Popen's
returncode (negative: killed by that signal). It stays single-threaded, so a
fork never copies a lock another thread held. :class:`ForkServer` is its
client, and :class:`Forked` the Popen-like handle of a forked process;
:func:`run` runs a command to its end (a test's CLI call, in any test layer).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import pathlib
import select
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[2]

# What the commands and daemons import: each process forked after this skips it.
PRELOAD = (
    "zoneflow.cli.main",
    "zoneflow.config",
    "zoneflow.opts",
    "zoneflow.cli.zone",
    "zoneflow.cli.zone_reads",
    "zoneflow.cli.recordset",
    "zoneflow.cli.recordset_reads",
    "zoneflow.cli.pool",
    "zoneflow.cli.job",
    "zoneflow.cli.db",
    "zoneflow.central.posting",
    "zoneflow.flows",
    "zoneflow.conductor.daemon",
    "zoneflow.mdns.server",
    "zoneflow.api.server",
    "zoneflow.producer.daemon",
    "zoneflow.inspector.daemon",
    "zoneflow.allinone",
    "psycopg2",
    "kazoo.client",
    # Imported on a process's first database connection, not by the modules above:
    # 0.05 to 0.1 s of CPU in each process forked without them.
    "oslo_db.sqlalchemy.enginefacade",
    "sqlalchemy.dialects.postgresql.psycopg2",
    "sqlalchemy.dialects.sqlite.pysqlite",
)


# --- the server --------------------------------------------------------------


def serve() -> None:
    for module in PRELOAD:
        importlib.import_module(module)
    # The ORM's models are set up on their first use: once here rather than in each
    # process that writes.
    importlib.import_module("sqlalchemy.orm").configure_mappers()
    if threading.active_count() != 1:
        raise SystemExit(f"forkserver: importing {PRELOAD} started a thread; forks would copy it")
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)
    requests = b""
    control = (0, 1, wake_read, wake_write)
    _answer({"ready": os.getpid()})
    while True:
        try:
            ready, _, _ = select.select([0, wake_read], [], [])
        except InterruptedError:
            ready = []
        if wake_read in ready:
            _drain(wake_read)
        if 0 in ready:
            chunk = os.read(0, 65536)
            if not chunk:
                return
            requests += chunk
            while b"\n" in requests:
                line, requests = requests.split(b"\n", 1)
                request = json.loads(line)
                _answer({"id": request["id"], "pid": _fork(request, control)})
        _reap()


def _answer(message: dict[str, Any]) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(1, data) :]


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _answer({"exited": pid, "returncode": os.waitstatus_to_exitcode(status)})


def _fork(request: dict[str, Any], control: tuple[int, ...]) -> int:
    """Fork the process asked for; its pid once it has its session and its log,
    as Popen returns once the new program runs."""
    settled_read, settled_write = os.pipe()
    pid = os.fork()
    if pid:
        os.close(settled_write)
        os.read(settled_read, 1)
        os.close(settled_read)
        return pid
    code = 1
    try:
        os.close(settled_read)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in control[2:]:
            os.close(fd)
        if request["new_session"]:
            os.setsid()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        _redirect(request["stdout"], request["stderr"])
        os.close(settled_write)
        code = _run(request["argv"])
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def _redirect(stdout: str, stderr: str | None) -> None:
    """fd 0 from /dev/null; 1 and 2 appended to the files named (2 to 1's if None)."""
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), 1)
    if stderr is None:
        os.dup2(1, 2)
    else:
        os.dup2(os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), 2)


def _run(argv: list[str]) -> int:
    """``python -m zoneflow.cli ARGV`` in this process; its exit status."""
    import runpy

    sys.argv = ["zoneflow", *argv]
    try:
        runpy.run_module("zoneflow.cli", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    return code


def _exit_code(code: object) -> int:
    """As the interpreter turns SystemExit's code into an exit status."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


# --- the client ----------------------------------------------------------------


class Forked:
    """A forked process, as much of subprocess.Popen as the tests use."""

    def __init__(self, server: ForkServer, pid: int, args: list[str]) -> None:
        self.server = server
        self.pid = pid
        self.args = args
        self.returncode: int | None = None
        self.exited = threading.Event()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self.exited.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it has just exited
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class ForkServer:
    """The client of one fork server, started with the first process asked for."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.functional.forkserver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        self.lock = threading.Lock()
        self.next_id = 0
        self.pids: dict[int, threading.Event] = {}
        self.started: dict[int, int] = {}
        self.children: dict[int, Forked] = {}
        self.early: dict[int, int] = {}
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, name="forkserver", daemon=True)
        self.reader.start()

    def spawn(
        self,
        argv: list[str],
        *,
        cwd: pathlib.Path | str,
        env: dict[str, str],
        stdout: pathlib.Path | str,
        stderr: pathlib.Path | str | None = None,
        new_session: bool = True,
    ) -> Forked:
        """``zoneflow ARGV``, forked; its output appended to ``stdout`` (and ``stderr``,
        or the same file)."""
        if not self.ready.wait(120):
            raise RuntimeError("the fork server did not start within 120 s")
        with self.lock:
            self.next_id += 1
            request_id = self.next_id
            answered = self.pids[request_id] = threading.Event()
            request = {
                "id": request_id,
                "argv": argv,
                "cwd": str(cwd),
                "env": env,
                "stdout": str(stdout),
                "stderr": None if stderr is None else str(stderr),
                "new_session": new_session,
            }
            assert self.process.stdin is not None
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        if not answered.wait(60):
            raise RuntimeError(f"the fork server did not fork zoneflow {' '.join(argv)}")
        with self.lock:
            pid = self.started.pop(request_id)
            child = self.children[pid] = Forked(self, pid, ["zoneflow", *argv])
            if pid in self.early:
                self._exited(child, self.early.pop(pid))
        return child

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            with self.lock:
                if "ready" in message:
                    self.ready.set()
                elif "pid" in message:
                    self.started[message["id"]] = message["pid"]
                    self.pids.pop(message["id"]).set()
                else:
                    child = self.children.pop(message["exited"], None)
                    if child is None:
                        # Exited before spawn() made its handle.
                        self.early[message["exited"]] = message["returncode"]
                    else:
                        self._exited(child, message["returncode"])

    @staticmethod
    def _exited(child: Forked, returncode: int) -> None:
        child.returncode = returncode
        child.exited.set()

    def close(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
        self.process.wait(30)


# Whether Deployment and run() fork their processes from here: the suite turns it
# on (tests/conftest.py); benchmarks, which measure processes as deployed, leave it off.
enabled = False

_server: ForkServer | None = None
_server_lock = threading.Lock()


def enable() -> None:
    global enabled
    enabled = True


def server() -> ForkServer:
    """This test worker's fork server."""
    global _server
    with _server_lock:
        if _server is None or _server.process.poll() is not None:
            _server = ForkServer()
            atexit.register(_server.close)
        return _server


def run(
    argv: list[str], *, workdir: pathlib.Path, timeout: float = 120, fresh: bool = False
) -> subprocess.CompletedProcess[str]:
    """``zoneflow ARGV`` run to its end, its output captured: forked from this worker's
    fork server when the suite enables them, else (or if ``fresh``) in a fresh
    interpreter (``python -m zoneflow.cli``). ``workdir`` holds its output files."""
    if fresh or not enabled:
        return subprocess.run(
            [sys.executable, "-m", "zoneflow.cli", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    handle, name = tempfile.mkstemp(prefix="zoneflow-", suffix=".out", dir=workdir)
    os.close(handle)  # the forked process opens it by name
    out = pathlib.Path(name)
    err = out.with_suffix(".err")
    process = server().spawn(
        argv, cwd=pathlib.Path.cwd(), env=dict(os.environ), stdout=out, stderr=err
    )
    try:
        returncode = process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    return subprocess.CompletedProcess(
        ["zoneflow", *argv],
        returncode,
        out.read_text(errors="replace"),
        err.read_text(errors="replace"),
    )


if __name__ == "__main__":
    serve()
