"""The read commands' fast path (zoneflow.storage.fastread): the same answers as
storage.reads, without oslo.config and SQLAlchemy, and the full path wherever it
cannot be sure."""

from __future__ import annotations

import json
import os
import pathlib
import sqlite3
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.integration.test_cli import run
from zoneflow import exceptions, objects
from zoneflow.central import zones as central_zones
from zoneflow.storage import fastread, reads
from zoneflow.storage import status as stored_status

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _zoneflow(
    tmp_path: pathlib.Path, config: pathlib.Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """``zoneflow ARGS`` in a process of its own, and which of oslo.config and
    SQLAlchemy that process imported."""
    script = (
        "import json, sys\n"
        "from zoneflow import cli\n"
        f"status = cli.main({list(args)!r})\n"
        "heavy = [m for m in ('oslo_config', 'sqlalchemy') if m in sys.modules]\n"
        "print(json.dumps(heavy), file=sys.stderr)\n"
        "sys.exit(status)\n"
    )
    # Nothing of the test's own environment that zoneflow or oslo.config reads.
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ZONEFLOW_", "PYTHON"))
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,  # not a checkout, which may hold a zoneflow.conf
        env={**clean, "PYTHONPATH": str(ROOT), "ZONEFLOW_CONFIG": str(config), **(env or {})},
    )
    *stderr, imported = done.stderr.splitlines()
    done.stderr = "".join(f"{line}\n" for line in stderr)
    return done, json.loads(imported)


def _config(tmp_path: pathlib.Path, connection: str, extra: str = "") -> pathlib.Path:
    path = tmp_path / "zoneflow.conf"
    path.write_text(f"[database]\nconnection = {connection}\n{extra}")
    return path


@pytest.fixture
def zones(fake_pool: None) -> list[objects.Zone]:
    """Zones of several projects, one in ERROR (so with updated_at), names given in
    mixed case, and last a soft-deleted one whose name lives again."""
    made = [
        central_zones.create_zone("alpha.example.", "h@example.com"),
        central_zones.create_zone(
            "Beta.Example.", "h@example.com", project_id="p1", description="b"
        ),
        central_zones.create_zone("gamma.example.", "h@example.com", project_id="p2"),
        central_zones.create_zone("err.example.", "h@example.com", project_id="p1"),
    ]
    gone = central_zones.create_zone("delta.example.", "h@example.com", project_id="p1")
    deleting = central_zones.delete_zone(gone.id)
    assert stored_status.finish_zone_delete(gone.id, serial=deleting.serial)
    made.append(central_zones.create_zone("delta.example.", "h@example.com", project_id="p2"))
    failed = made[3]
    assert stored_status.set_zone_status(
        failed.id, serial=failed.serial, status=objects.Status.ERROR, error="refused by fake1"
    )
    listed = reads.list_zones()
    # What the comparisons below rely on being there.
    assert gone.id not in {zone.id for zone in listed}
    assert {zone.updated_at is None for zone in listed} == {True, False}
    assert {zone.description is None for zone in listed} == {True, False}
    assert {zone.error is None for zone in listed} == {True, False}
    assert "beta.example." in {zone.name for zone in listed}
    return [*made, gone]


@pytest.fixture
def fast(tmp_path: pathlib.Path, database: str) -> fastread.Database:
    assert database == f"sqlite:///{tmp_path}/zoneflow.sqlite"
    return fastread.Database(str(tmp_path / "zoneflow.sqlite"))


def _outcome(
    get_zone: Callable[..., objects.Zone], ref: str, project_id: str | None
) -> objects.Zone | tuple[type[Exception], str]:
    """The zone a get found, or the error it raised (its class and message)."""
    try:
        return get_zone(ref, project_id=project_id)
    except exceptions.ZoneNotFound as exc:
        return (type(exc), str(exc))


@pytest.mark.parametrize("project_id", [None, "p1", "p2", "nobody"])
def test_fast_list_answers_as_storage(
    zones: list[objects.Zone], fast: fastread.Database, project_id: str | None
) -> None:
    assert fast.list_zones(project_id=project_id) == reads.list_zones(project_id=project_id)


def test_fast_get_answers_as_storage(zones: list[objects.Zone], fast: fastread.Database) -> None:
    refs = [zone.id for zone in zones] + [
        "beta.example.",
        "beta.example",
        "BETA.Example.",
        "delta.example",
        "err.example.",
        "nowhere.example.",
        "nowhere",
    ]
    outcomes = []
    for ref in refs:
        for project_id in (None, "p1", "p2"):
            expected = _outcome(reads.get_zone, ref, project_id)
            assert _outcome(fast.get_zone, ref, project_id) == expected, (ref, project_id)
            outcomes.append(expected)
    # Found and not found, the soft-deleted zone's id among the latter.
    assert {type(outcome) for outcome in outcomes} == {objects.Zone, tuple}


# --- the command, in a process of its own ---------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("zone", "list"), "beta.example."),
        (("zone", "list", "--project", "p1"), "beta.example."),
        (("zone", "list", "--json"), '"beta.example."'),
        (("zone", "show", "BETA.example."), "beta.example."),
        (("zone", "show", "nowhere.example."), "zone 'nowhere.example.' does not exist"),
    ],
)
def test_read_commands_answer_without_oslo_config_nor_sqlalchemy(
    capsys: pytest.CaptureFixture[str],
    tmp_path: pathlib.Path,
    database: str,
    zones: list[objects.Zone],
    args: tuple[str, ...],
    said: str,
) -> None:
    done, imported = _zoneflow(tmp_path, _config(tmp_path, database), *args)
    assert imported == []
    # The full path: this process has oslo.config loaded, and the test's database set.
    code, out, err = run(capsys, *args)
    assert (done.returncode, done.stdout, done.stderr) == (code, out, err)
    assert said in out + err


# --- where the fast path cannot be sure: the full path, with its messages ---------------------


def test_a_postgresql_url_takes_the_full_path(tmp_path: pathlib.Path) -> None:
    url = "postgresql+psycopg2://zf:secret@127.0.0.1:1/zoneflow"
    done, imported = _zoneflow(
        tmp_path, _config(tmp_path, url, "max_retries = 0\n"), "zone", "list"
    )
    assert done.returncode == 1
    assert "database at postgresql+psycopg2://zf:***@127.0.0.1:1/zoneflow is unreachable" in (
        done.stderr
    )
    assert "oslo_config" in imported


def test_an_oslo_config_environment_override_takes_the_full_path(
    tmp_path: pathlib.Path, database: str, zones: list[objects.Zone]
) -> None:
    # The file names the test's database, full of zones; the environment wins.
    other = tmp_path / "other.sqlite"
    done, imported = _zoneflow(
        tmp_path,
        _config(tmp_path, database),
        "zone",
        "list",
        env={"OS_DATABASE__CONNECTION": f"sqlite:///{other}"},
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"zoneflow: error: the database at sqlite:///{other} has no zoneflow schema yet: "
        "run 'zoneflow db sync'\n"
    )
    assert "oslo_config" in imported


def test_a_missing_database_file_takes_the_full_path(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "missing.sqlite"
    done, imported = _zoneflow(tmp_path, _config(tmp_path, f"sqlite:///{missing}"), "zone", "list")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"zoneflow: error: the database at sqlite:///{missing} has no zoneflow schema yet: "
        "run 'zoneflow db sync'\n"
    )
    assert "oslo_config" in imported


def test_a_database_without_schema_takes_the_full_path(tmp_path: pathlib.Path) -> None:
    empty = tmp_path / "empty.sqlite"
    with sqlite3.connect(empty) as conn:
        conn.execute("CREATE TABLE unrelated (id INTEGER)")
    conn.close()
    done, imported = _zoneflow(
        tmp_path, _config(tmp_path, f"sqlite:///{empty}"), "zone", "show", "a.example."
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"zoneflow: error: the database at sqlite:///{empty} has no zoneflow schema yet: "
        "run 'zoneflow db sync'\n"
    )
    assert "oslo_config" in imported


# --- reading the configuration as oslo.config would ----------------------------------------


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    """This process as a fresh ``zoneflow`` one: oslo.config not loaded, nothing of
    zoneflow's in the environment, no config directories, in an empty directory."""
    monkeypatch.delitem(sys.modules, "oslo_config")
    for name in os.environ:
        if name.startswith(("OS_", "ZONEFLOW_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_without_files_the_default_database_is_read(fresh_process: pathlib.Path) -> None:
    assert fastread.open_database() == fastread.Database("zoneflow.sqlite", 30.0)
    pathlib.Path("zoneflow.conf").write_text("[database]\nbusy_wait = 2.5\n")
    assert fastread.open_database() == fastread.Database("zoneflow.sqlite", 2.5)


@pytest.mark.parametrize(
    "url", ["sqlite:////srv/zoneflow/zoneflow.sqlite", "sqlite:///state/zf.db", "sqlite:///a@b"]
)
def test_the_database_file_is_the_one_sqlalchemy_opens(
    fresh_process: pathlib.Path, url: str
) -> None:
    import sqlalchemy

    config = _config(fresh_process, url)
    assert fastread.open_database([str(config)]).path == sqlalchemy.make_url(url).database


def test_the_last_config_file_wins_as_in_oslo_config(fresh_process: pathlib.Path) -> None:
    first, last = fresh_process / "first.conf", fresh_process / "last.conf"
    first.write_text("[database]\nconnection = sqlite:///first.sqlite\nbusy_wait = 5\n")
    last.write_text("[database]\nconnection = sqlite:///last.sqlite\n")
    assert fastread.open_database([str(first), str(last)]) == fastread.Database("last.sqlite", 5.0)


@pytest.mark.parametrize(
    "text",
    [
        "[database]\nconnection = sqlite://\n",
        "[database]\nconnection = sqlite:///:memory:\n",
        "[database]\nconnection = sqlite:///file:zf.db?mode=memory&uri=true\n",
        "[database]\nconnection = sqlite:///zf%20db.sqlite\n",
        "[database]\nconnection = sqlite+pysqlcipher:///zf.sqlite\n",
        "[database]\nconnection = postgresql://zf@db/zoneflow\n",
        '[database]\nconnection = "sqlite:///zf.sqlite"\n',
        "[database]\nconnection = sqlite:///$state_path/zf.sqlite\n",
        "[database]\nconnection =\n  sqlite:///zf.sqlite\n",
        "[database]\nconnection = sqlite:///a.sqlite\nconnection = sqlite:///b.sqlite\n",
        "[DATABASE]\nconnection = sqlite:///zf.sqlite\n",
        "[DEFAULT]\nconfig_source = remote\n",
        "[database]\nbusy_wait = soon\n",
        "[database]\nbusy_wait = 0\n",
        "connection = sqlite:///zf.sqlite\n",
    ],
)
def test_what_only_oslo_config_reads_takes_the_full_path(
    fresh_process: pathlib.Path, text: str
) -> None:
    config = fresh_process / "zoneflow.conf"
    config.write_text(text)
    with pytest.raises(fastread.Unsure):
        fastread.open_database([str(config)])


def test_oslo_config_sources_beside_the_files_take_the_full_path(
    fresh_process: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(fresh_process, "sqlite:///zf.sqlite")
    assert fastread.open_database([str(config)]).path == "zf.sqlite"
    with pytest.raises(fastread.Unsure):
        fastread.open_database([str(fresh_process / "absent.conf")])
    monkeypatch.setenv("OS_DATABASE__BUSY_WAIT", "3")
    with pytest.raises(fastread.Unsure):
        fastread.open_database([str(config)])
    monkeypatch.delenv("OS_DATABASE__BUSY_WAIT")
    (fresh_process / ".zoneflow" / "zoneflow.conf.d").mkdir(parents=True)
    with pytest.raises(fastread.Unsure):
        fastread.open_database([str(config)])


def test_a_process_with_oslo_config_loaded_takes_the_full_path(
    tmp_path: pathlib.Path, database: str
) -> None:
    # Its overrides (as this test process has: the test's database) are no file's.
    assert "oslo_config" in sys.modules
    with pytest.raises(fastread.Unsure):
        fastread.open_database([str(_config(tmp_path, database))])
