"""``zoneflow api --workers N``: N processes answer on one port, a lost one is replaced,
and SIGTERM stops them all (issue 17: an API that keeps up)."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest

from tests.functional import forkserver
from tests.functional.fixtures.ports import free_port
from tests.support import ADMIN, eventually
from zoneflow import objects
from zoneflow.cli.main import build_parser
from zoneflow.storage import models, services

# Starting Python and importing the API, then a worker again, on a loaded machine (a
# niced run beside a full test suite took over 90 s).
START_TIMEOUT = 180.0


def _children(pid: int) -> set[int]:
    """The live processes whose parent is ``pid``."""
    found = set()
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def _answers(url: str) -> bool:
    # A new connection each time: whichever worker waits in accept takes it.
    with urllib.request.urlopen(f"{url}/", timeout=10) as response:
        return bool(response.status == 200)


def _api_statuses(url: str) -> dict[int, str]:
    """pid -> status of the API processes the API lists."""
    request = urllib.request.Request(f"{url}/v2/service_statuses", headers=ADMIN)
    with urllib.request.urlopen(request, timeout=10) as response:
        listed = json.loads(response.read())["service_statuses"]
    return {
        int(s["hostname"].rpartition("-")[2]): s["status"]
        for s in listed
        if s["service_name"] == "api"
    }


@pytest.fixture
def api_of_two(
    tmp_path: pathlib.Path, database: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    conf = tmp_path / "zoneflow.conf"
    conf.write_text(
        f"[database]\nconnection = {database}\n[api]\nhost = 127.0.0.1\nport = {port}\n"
        "workers = 2\naccess_log = false\n"
    )
    log = open(tmp_path / "api.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "zoneflow.cli", "--config-file", str(conf), "api"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def test_api_workers_each_answer_are_replaced_and_all_stop_on_sigterm(
    api_of_two: tuple[subprocess.Popen[bytes], str],
) -> None:
    process, url = api_of_two

    def serving() -> set[int] | None:
        assert process.poll() is None, f"zoneflow api exited {process.returncode}"
        workers = _children(process.pid)
        up = {pid for pid, status in _api_statuses(url).items() if status == "UP"}
        return workers if len(workers) == 2 and workers <= up else None

    first, second = sorted(
        eventually(
            serving, START_TIMEOUT, interval=0.2, what="two API workers UP", ignore=(OSError,)
        )
    )

    # Each one alone answers: the other stopped, every new connection is its.
    for paused, alone in ((first, second), (second, first)):
        os.kill(paused, signal.SIGSTOP)
        try:
            assert all(_answers(url) for _ in range(3)), f"worker {alone} alone did not answer"
        finally:
            os.kill(paused, signal.SIGCONT)

    # A worker lost is replaced by a new one, which answers too.
    os.kill(first, signal.SIGKILL)
    replaced = eventually(
        lambda: (workers := serving()) and first not in workers and workers,
        START_TIMEOUT,
        interval=0.2,
        what="a new worker in place of the one killed",
        ignore=(OSError,),
    )
    assert second in replaced
    workers = sorted(replaced)

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert not _children(process.pid)
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    # Each stopped cleanly: its heartbeat said DOWN on the way out.
    page = services.find_service_statuses(
        {"service_name": "api"}, objects.Paging(limit=100), alive_since=models.utcnow()
    )
    down = {int(s.hostname.rpartition("-")[2]): s.status for s in page.items}
    assert {down[pid] for pid in workers} == {objects.ServiceState.DOWN}


def test_a_bad_number_of_workers_is_refused_with_a_clear_error(
    tmp_path: pathlib.Path, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["api", "--workers", "0"])
    assert exited.value.code == 2
    assert "argument --workers: '0' is not a number of processes: give 1 to 64" in (
        capsys.readouterr().err
    )

    conf = tmp_path / "zoneflow.conf"
    conf.write_text(f"[database]\nconnection = {database}\n[api]\nworkers = many\n")
    done = forkserver.run(["--config-file", str(conf), "api"], workdir=tmp_path)
    assert done.returncode == 1
    assert "[api] workers in zoneflow.conf is invalid" in done.stderr
    assert "give a number of processes from 1 to 64" in done.stderr
    assert "Traceback" not in done.stderr
