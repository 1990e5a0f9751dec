"""The CLI as a user meets it: options anywhere, pipes, short job ids, projects,
waits that say what they wait for, and messages that read well."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from taskflow.persistence import models

from tests.integration.conftest import load_pool
from tests.integration.test_cli import run
from zoneflow import cli, exceptions, objects
from zoneflow.api import app
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.cli import changes
from zoneflow.conductor import daemon
from zoneflow.storage import reads as stored_reads
from zoneflow.taskflow_adapter import persistence

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _zoneflow(
    config: pathlib.Path, *args: str, stdout: int | None = subprocess.PIPE, code: str = ""
) -> subprocess.CompletedProcess[str]:
    """``zoneflow ARGS`` in a process of its own; ``code`` runs after it, in it."""
    script = (
        "import runpy, sys\n"
        f"sys.argv = ['zoneflow', *{list(args)!r}]\n"
        "try:\n"
        "    runpy.run_module('zoneflow.cli', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    status = exc.code\n"
        f"{code}\n"
        "sys.exit(status)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), "ZONEFLOW_CONFIG": str(config)},
    )


@pytest.fixture
def config(tmp_path: pathlib.Path, database: str) -> pathlib.Path:
    """A zoneflow.conf for a zoneflow process of its own, on the test's database."""
    path = tmp_path / "zoneflow.conf"
    path.write_text(f"[database]\nconnection = {database}\n")
    return path


@pytest.fixture
def api() -> Iterator[TestClient]:
    with TestClient(app.create_app(), raise_server_exceptions=False) as client:
        yield client


# --- options before or after the command -------------------------------------------


def test_global_options_work_after_the_command(
    capsys: pytest.CaptureFixture[str], fake_pool: None
) -> None:
    code, out, _ = run(capsys, "zone", "create", "after.example.", "--email", "h@e.com", "--json")
    assert code == 0
    assert json.loads(out)["name"] == "after.example."
    code, out, _ = run(capsys, "zone", "list", "--json")
    assert [zone["name"] for zone in json.loads(out)] == ["after.example."]
    code, _, err = run(capsys, "zone", "list", "--config-file", "/nope.conf")
    assert code == 1 and "config file /nope.conf does not exist" in err
    with pytest.raises(exceptions.ZoneNotFound):  # --debug: the traceback, not one line
        cli.main(["zone", "show", "nope.example.", "--debug"])


def test_config_files_given_before_and_after_the_command_are_all_read(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    first, second = tmp_path / "a.conf", tmp_path / "b.conf"
    first.write_text("")
    code, _, err = run(
        capsys, "--config-file", str(first), "zone", "list", "--config-file", str(second)
    )
    assert code == 1 and f"config file {second} does not exist" in err


# --- a reader that goes away -----------------------------------------------------------


def test_job_list_into_a_closed_pipe_ends_quietly(config: pathlib.Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `| head` does once it has its lines
    try:
        done = _zoneflow(config, "job", "list", stdout=write_end)
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == cli.EXIT_BROKEN_PIPE


# --- short job ids -----------------------------------------------------------------------


def _only_job_id(capsys: pytest.CaptureFixture[str]) -> str:
    code, out, _ = run(capsys, "--json", "job", "list")
    assert code == 0
    (job,) = json.loads(out)
    return str(job["id"])


def test_a_unique_prefix_of_a_job_id_finds_the_job(
    capsys: pytest.CaptureFixture[str], conductor: daemon.Conductor
) -> None:
    load_pool({})
    assert run(capsys, "zone", "create", "short.example.", "--email", "h@e.com", "--wait")[0] == 0
    job_id = _only_job_id(capsys)
    code, out, err = run(capsys, "job", "show", job_id[:6])
    assert code == 0, err
    assert out.startswith(f"job {job_id}: create-zone short.example. serial ")


def _add_logbook(job_id: str) -> None:
    with contextlib.closing(persistence.get_backend().get_connection()) as connection:
        connection.save_logbook(models.LogBook(f"book {job_id}", uuid=job_id))


def test_a_job_id_prefix_two_jobs_share_is_refused_naming_both(
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = "abcd1234-0000-4000-8000-000000000001"
    second = "abcd5678-0000-4000-8000-000000000002"
    for job_id in (first, second):
        _add_logbook(job_id)
    code, _, err = run(capsys, "job", "show", "abcd")
    assert code == 1
    assert f"job id abcd is ambiguous: 2 jobs' ids begin with it ({first}, {second})" in err


@pytest.mark.parametrize("command", ["show", "cancel"])
def test_a_job_id_prefix_under_four_characters_is_refused(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    _add_logbook("abcd1234-0000-4000-8000-000000000001")
    code, _, err = run(capsys, "job", command, "abc")
    assert code == 1
    assert "job id 'abc' is too short: give at least 4 of its characters" in err


# --- projects ----------------------------------------------------------------------------


def test_a_zone_made_for_a_project_is_the_projects_in_the_api(
    capsys: pytest.CaptureFixture[str], fake_pool: None, api: TestClient
) -> None:
    code, _, err = run(
        capsys, "--project", "alice", "zone", "create", "alice.example.", "--email", "h@e.com"
    )
    assert code == 0, err
    assert stored_reads.get_zone("alice.example.").project_id == "alice"
    member = {"X-Auth-Project-ID": "alice", "X-Roles": "member"}
    listed = api.get("/v2/zones", headers=member).json()["zones"]
    assert [zone["name"] for zone in listed] == ["alice.example."]


def test_a_project_sees_its_own_zones_unless_all_projects(
    capsys: pytest.CaptureFixture[str], fake_pool: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZONEFLOW_PROJECT", "alice")
    run(capsys, "zone", "create", "alice.example.", "--email", "h@e.com")
    run(capsys, "zone", "create", "bob.example.", "--email", "h@e.com", "--project", "bob")
    assert stored_reads.get_zone("alice.example.").project_id == "alice"  # from $ZONEFLOW_PROJECT

    def names(*args: str) -> list[str]:
        code, out, err = run(capsys, "--json", "zone", "list", *args)
        assert code == 0, err
        return sorted(zone["name"] for zone in json.loads(out))

    assert names() == ["alice.example."]
    assert names("--project", "bob") == ["bob.example."]
    assert names("--all-projects") == ["alice.example.", "bob.example."]
    code, _, err = run(capsys, "zone", "show", "bob.example.")
    assert code == 1 and "zone 'bob.example.' does not exist" in err
    code, _, err = run(capsys, "zone", "delete", "bob.example.")
    assert code == 1 and stored_reads.get_zone("bob.example.").action == objects.Action.CREATE


def test_without_a_project_zones_are_the_operators_and_every_zone_is_listed(
    capsys: pytest.CaptureFixture[str], fake_pool: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZONEFLOW_PROJECT", raising=False)
    run(capsys, "zone", "create", "ops.example.", "--email", "h@e.com")
    run(capsys, "--project", "bob", "zone", "create", "bob.example.", "--email", "h@e.com")
    assert stored_reads.get_zone("ops.example.").project_id is None
    code, out, _ = run(capsys, "zone", "list")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["name", "id", "serial", "status", "action", "project_id"]
    assert sorted(row.split()[0] for row in rows) == ["bob.example.", "ops.example."]


# --- waiting -------------------------------------------------------------------------------


def _steps(err: str) -> list[str]:
    return [line.split("s  ", 1)[1] for line in err.splitlines() if "s  " in line]


def test_a_wait_on_a_terminal_shows_the_steps_once_it_lasts(
    capsys: pytest.CaptureFixture[str],
    conductor: daemon.Conductor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    load_pool({}, {})
    monkeypatch.setattr(changes, "_on_terminal", lambda: True)
    monkeypatch.setattr(changes, "PROGRESS_AFTER", 0.0)  # every wait has lasted long enough
    code, out, err = run(
        capsys, "--json", "zone", "create", "slow.example.", "--email", "h@e.com", "--wait"
    )
    assert code == 0, err
    assert json.loads(out)["status"] == objects.Status.ACTIVE
    steps = _steps(err)
    assert steps[0].startswith("job ")
    assert "target fake1: created" in steps and steps[-1] == "status: ACTIVE"


def test_a_wait_off_a_terminal_prints_no_steps(
    capsys: pytest.CaptureFixture[str],
    conductor: daemon.Conductor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    load_pool({})
    monkeypatch.setattr(changes, "_on_terminal", lambda: False)
    monkeypatch.setattr(changes, "PROGRESS_AFTER", 0.0)
    code, _, err = run(capsys, "zone", "create", "piped.example.", "--email", "h@e.com", "--wait")
    assert code == 0
    assert err == ""


def test_a_failed_wait_says_why_and_which_command_shows_more(
    capsys: pytest.CaptureFixture[str], conductor: daemon.Conductor
) -> None:
    load_pool({}, {"fail": "create"}, threshold=100)
    code, out, err = run(
        capsys, "--json", "zone", "create", "broken.example.", "--email", "h@e.com", "--wait"
    )
    assert code == 1
    assert json.loads(out)["status"] == objects.Status.ERROR  # stdout still shows the zone
    job_id = _only_job_id(capsys)
    zone = stored_reads.get_zone("broken.example.")
    assert zone.error
    assert err == (
        f"zoneflow: error: zone broken.example. is in ERROR: {zone.error}; "
        f"'zoneflow job show {job_id}' shows each step\n"
    )
    assert run(capsys, "job", "show", job_id)[0] == 0


# --- messages ----------------------------------------------------------------------------------


def test_recordset_create_and_delete_wait_report_the_recordset_and_its_end(
    capsys: pytest.CaptureFixture[str], conductor: daemon.Conductor
) -> None:
    load_pool({})
    assert run(capsys, "zone", "create", "rs.example.", "--email", "h@e.com", "--wait")[0] == 0
    code, out, err = run(
        capsys, "--json", "recordset", "create", "rs.example.", "www.rs.example.", "A", "--record",
        "192.0.2.1", "--wait",
    )  # fmt: skip
    assert code == 0, err
    created = json.loads(out)
    assert (created["name"], created["records"]) == ("www.rs.example.", ["192.0.2.1"])
    assert (created["status"], created["action"]) == (objects.Status.ACTIVE, objects.Action.NONE)
    code, out, err = run(capsys, "recordset", "delete", "rs.example.", "www.rs.example.", "--wait")
    assert code == 0, err
    assert out == (
        "an A recordset www.rs.example. was deleted: the nameservers of rs.example. "
        "no longer serve it\n"
    )
    assert stored_reads.list_recordsets(stored_reads.get_zone("rs.example.").id) == []


@pytest.mark.parametrize(
    ("rtype", "data", "said"),
    [("A", "192.0.2.1", "an A"), ("MX", "10 mx.example.", "an MX"), ("TXT", '"x"', "a TXT")],
)
def test_a_duplicate_recordset_is_named_with_the_right_article(
    capsys: pytest.CaptureFixture[str], fake_pool: None, rtype: str, data: str, said: str
) -> None:
    run(capsys, "zone", "create", "dup.example.", "--email", "h@e.com")
    create = ("recordset", "create", "dup.example.", "x.dup.example.", rtype, "--record", data)
    assert run(capsys, *create)[0] == 0
    code, _, err = run(capsys, *create)
    assert code == 1
    assert err == (
        f"zoneflow: error: {said} recordset named x.dup.example. already exists: update it "
        "instead\n"
    )


def test_the_apis_404_speaks_of_the_api_and_the_cli_of_the_cli(
    capsys: pytest.CaptureFixture[str], fake_pool: None, api: TestClient
) -> None:
    missing = "6b1c2d3e-0000-4000-8000-000000000000"
    body = api.get(f"/v2/zones/{missing}").json()
    assert body["type"] == "zone_not_found"
    assert body["message"] == (
        f"zone '{missing}' does not exist: GET /v2/zones lists the zones you can see"
    )
    code, _, err = run(capsys, "zone", "show", missing)
    assert code == 1
    assert err == (
        f"zoneflow: error: zone '{missing}' does not exist: 'zoneflow zone list' shows the "
        "zones there are\n"
    )


# --- start-up ------------------------------------------------------------------------------------

HEAVY = ("taskflow", "fastapi", "kazoo", "networkx")


def _imported(done: subprocess.CompletedProcess[str]) -> list[str]:
    return json.loads(done.stderr.splitlines()[-1])


def _report_imports(names: tuple[str, ...]) -> str:
    return (
        "import json\n"
        f"print(json.dumps([m for m in {list(names)!r} if m in sys.modules]), file=sys.stderr)"
    )


def test_help_imports_no_library_it_does_not_need(config: pathlib.Path) -> None:
    names = (*HEAVY, "sqlalchemy", "oslo_config", "oslo_db")
    done = _zoneflow(config, "--help", code=_report_imports(names))
    assert done.returncode == 0 and "zone" in done.stdout
    assert _imported(done) == []


# What a read command does without: oslo.db (its engine facade and errors), the
# ORM and zoneflow's models, the API of changes and its validation (dnspython).
NOT_FOR_READS = (
    *HEAVY,
    "oslo_db.sqlalchemy",
    "oslo_db.exception",
    "sqlalchemy.orm",
    "zoneflow.storage.models",
    "zoneflow.storage.catalogs",
    "zoneflow.storage.conversions",
    "zoneflow.storage.history",
    "zoneflow.storage.outbox",
    "zoneflow.storage.pools",
    "zoneflow.storage.queries",
    "zoneflow.storage.recordsets",
    "zoneflow.storage.retired",
    "zoneflow.storage.status",
    "zoneflow.storage.targets",
    "zoneflow.storage.transfers",
    "zoneflow.storage.zones",
    "zoneflow.central.zones",
    "zoneflow.central.recordsets",
    "dns",
)


@pytest.mark.parametrize(
    "args",
    [("zone", "list"), ("zone", "show", "read.example.")],
)
def test_read_commands_import_no_orm_nor_oslo_db(
    config: pathlib.Path, fake_pool: None, args: tuple[str, ...]
) -> None:
    zone = central_zones.create_zone("read.example", "h@e.com")
    central_recordsets.create_recordset(zone.id, "www", "A", ["192.0.2.1"])
    # On SQLite, nor PostgreSQL's dialect and driver (tests/functional: on PostgreSQL).
    on_sqlite = (*NOT_FOR_READS, "sqlalchemy.dialects.postgresql", "psycopg2")
    done = _zoneflow(config, *args, code=_report_imports(on_sqlite))
    assert done.returncode == 0, done.stderr
    assert "read.example." in done.stdout
    assert _imported(done) == []


# What reading a zone's recordsets does without: the posting of jobs (TaskFlow's
# board, kazoo) and the following of a job's steps (TaskFlow's logbooks).
NOT_FOR_RECORDSET_READS = (
    *HEAVY,
    "zoneflow.jobs",
    "zoneflow.central.posting",
    "zoneflow.central.waiting",
    "zoneflow.taskflow_adapter.persistence",
)


@pytest.mark.parametrize(
    "args",
    [("recordset", "list", "read.example."), ("recordset", "show", "read.example.", "www")],
)
def test_recordset_reads_import_no_taskflow(
    config: pathlib.Path, fake_pool: None, args: tuple[str, ...]
) -> None:
    zone = central_zones.create_zone("read.example", "h@e.com")
    central_recordsets.create_recordset(zone.id, "www", "A", ["192.0.2.1"])
    done = _zoneflow(config, *args, code=_report_imports(NOT_FOR_RECORDSET_READS))
    assert done.returncode == 0, done.stderr
    assert "192.0.2.1" in done.stdout
    assert _imported(done) == []
