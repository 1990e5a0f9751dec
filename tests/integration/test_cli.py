"""The CLI: one clear line and a non-zero exit for every error, never a traceback."""

from __future__ import annotations

import json
import pathlib

import pytest
from oslo_config import cfg

from tests.integration.conftest import fake_pool_yaml
from zoneflow import cli
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import reads as stored_reads


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def pool_file(tmp_path: pathlib.Path) -> str:
    path = tmp_path / "pools.yaml"
    path.write_text(fake_pool_yaml({}))
    return str(path)


def test_zone_and_recordset_commands_change_storage(
    capsys: pytest.CaptureFixture[str], pool_file: str
) -> None:
    assert run(capsys, "pool", "update", "--file", pool_file)[0] == 0
    code, out, _ = run(
        capsys, "--json", "zone", "create", "example.com.", "--email", "h@example.com"
    )
    assert code == 0
    assert json.loads(out)["name"] == "example.com."
    code, _, _ = run(
        capsys,
        "recordset",
        "create",
        "example.com",
        "www.example.com.",
        "A",
        "--record",
        "192.0.2.1",
        "--record",
        "192.0.2.2",
    )
    assert code == 0
    (rs,) = stored_reads.list_recordsets(stored_reads.get_zone("example.com").id)
    assert (rs.name, rs.type, rs.records) == ("www.example.com.", "A", ("192.0.2.1", "192.0.2.2"))
    code, out, _ = run(capsys, "recordset", "list", "example.com")
    assert "www.example.com." in out and "192.0.2.1, 192.0.2.2" in out
    # Names are given absolute, as the API takes them; nothing is completed.
    code, _, err = run(
        capsys, "recordset", "create", "example.com.", "mail", "A", "--record", "192.0.2.9"
    )
    assert code == 1 and "give the absolute name, e.g. mail.example.com." in err
    code, _, err = run(
        capsys, "recordset", "create", "example.com.", "example.com.", "MX", "--record", "10 mail"
    )
    assert code == 1 and "10 mail.example.com." in err
    assert len(stored_reads.list_recordsets(stored_reads.get_zone("example.com").id)) == 1
    assert run(capsys, "recordset", "delete", "example.com", "www")[0] == 0
    assert stored_reads.list_recordsets(stored_reads.get_zone("example.com").id) == []


def test_recordset_list_shows_the_soa_and_apex_ns_which_cannot_be_changed(
    capsys: pytest.CaptureFixture[str], pool_file: str
) -> None:
    run(capsys, "pool", "update", "--file", pool_file)
    run(capsys, "zone", "create", "example.com.", "--email", "h@example.com")
    code, out, _ = run(capsys, "--json", "recordset", "list", "example.com.")
    assert code == 0
    shown = {rs["type"]: rs for rs in json.loads(out)}
    serial = stored_reads.get_zone("example.com.").serial
    assert shown["SOA"]["records"] == [
        f"ns1.example.org. h.example.com. {serial} 3600 600 86400 3600"
    ]
    assert shown["NS"]["records"] == ["ns1.example.org."]
    code, _, err = run(
        capsys, "recordset", "delete", "example.com.", "example.com.", "--type", "SOA"
    )
    assert (code, err.count("\n")) == (1, 1)
    assert "Deleting a SOA recordset is not allowed" in err
    code, _, err = run(
        capsys, "recordset", "delete", "example.com.", "example.com.", "--type", "NS"
    )
    assert "Managed records may not be deleted" in err
    assert stored_reads.get_zone("example.com.").serial == serial


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("zone", "create", "a..b.", "--email", "h@example.com"), "invalid label"),
        (
            ("zone", "create", "example.com", "--email", "h@example.com"),
            "zone name 'example.com' does not end with a dot: give the absolute name, example.com.",
        ),
        (("zone", "create", "example.com.", "--email", "h@example.com", "--ttl", "x"), "TTL 'x'"),
        (
            ("zone", "create", "example.com.", "--email", "h@example.com", "--pool", "no"),
            "pool 'no'",
        ),
        (("zone", "show", "nope.example"), "zone 'nope.example' does not exist"),
        (
            ("recordset", "create", "nope.example", "www", "A", "--record", "192.0.2.1"),
            "does not exist",
        ),
        (("pool", "update", "--file", "/nope/pools.yaml"), "cannot read pools file"),
        (("job", "show", "0000"), "job 0000 does not exist"),
        (("flow", "show", "frobnicate-zone"), "there is no flow 'frobnicate-zone'"),
        (("--config-file", "/nope.conf", "zone", "list"), "config file /nope.conf does not exist"),
    ],
)
def test_errors_are_one_line_on_stderr_with_exit_1(
    capsys: pytest.CaptureFixture[str], pool_file: str, args: tuple[str, ...], message: str
) -> None:
    assert run(capsys, "pool", "update", "--file", pool_file)[0] == 0
    code, out, err = run(capsys, *args)
    assert code == 1
    assert message in err
    assert err.startswith("zoneflow: error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_bad_record_data_leaves_no_half_written_recordset(
    capsys: pytest.CaptureFixture[str], pool_file: str
) -> None:
    run(capsys, "pool", "update", "--file", pool_file)
    run(capsys, "zone", "create", "example.com.", "--email", "h@example.com")
    code, _, err = run(
        capsys,
        "recordset",
        "create",
        "example.com",
        "www.example.com.",
        "A",
        "--record",
        "192.0.2.1",
        "--record",
        "192.0.2.999",
    )
    assert code == 1
    assert "'192.0.2.999' is invalid" in err
    assert stored_reads.list_recordsets(stored_reads.get_zone("example.com").id) == []


def test_an_unreachable_zookeeper_is_named_and_nothing_changes(
    capsys: pytest.CaptureFixture[str], pool_file: str, tmp_path: pathlib.Path, database: str
) -> None:
    run(capsys, "pool", "update", "--file", pool_file)
    conf = tmp_path / "zk.conf"
    conf.write_text(
        f"[database]\nconnection = {database}\n"
        "[jobboard]\nbackend = zookeeper\nhosts = 127.0.0.1:1\nconnect_timeout = 1\n"
    )
    code, _, err = run(
        capsys, "--config-file", str(conf), "zone", "create", "example.com.", "--email", "h@e.com"
    )
    assert code == 1
    assert "cannot reach ZooKeeper at 127.0.0.1:1" in err
    assert stored_reads.list_zones() == []


def test_an_unreachable_database_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    cfg.CONF.clear_override("connection", group="database")
    conf = tmp_path / "pg.conf"
    conf.write_text(
        "[database]\nconnection = postgresql+psycopg2://zf:secret@127.0.0.1:1/zoneflow\n"
        "max_retries = 0\n"
    )
    code, _, err = run(capsys, "--config-file", str(conf), "zone", "list")
    assert code == 1
    assert "database at postgresql+psycopg2://zf:***@127.0.0.1:1/zoneflow is unreachable" in err
    assert "secret" not in err


def test_flow_show_draws_per_target_tasks_as_dot(
    capsys: pytest.CaptureFixture[str], pool_file: str
) -> None:
    run(capsys, "pool", "update", "--file", pool_file)
    code, out, _ = run(
        capsys, "flow", "show", "create-zone", "--format", "dot", "--pool", "default"
    )
    assert code == 0
    assert out.startswith('digraph "create-zone"')
    target = stored_pools.get_pool("default").targets[0]
    assert f'"create-zone-on-target-{target.id}"' in out
    assert '"consensus-check" -> "status-write-retry"' in out


def test_flow_show_draws_an_example_pool_without_a_database(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    # A directory that does not exist: SQLite could not even create the file.
    absent = tmp_path / "absent" / "zoneflow.sqlite"
    cfg.CONF.set_override("connection", f"sqlite:///{absent}", group="database")
    code, out, err = run(capsys, "flow", "show", "update-zone")
    assert (code, err) == (0, "")
    assert out.startswith('digraph "update-zone"')
    assert '"update-zone-on-target-bind9-1"' in out
    assert '"update-zone-on-target-bind9-2"' in out
    assert not absent.parent.exists()


def test_flow_show_for_a_pool_that_does_not_exist_names_it(
    capsys: pytest.CaptureFixture[str], pool_file: str
) -> None:
    run(capsys, "pool", "update", "--file", pool_file)
    code, out, err = run(capsys, "flow", "show", "create-zone", "--pool", "nope")
    assert (code, out) == (1, "")
    assert "pool 'nope'" in err


def test_a_database_without_schema_says_to_run_db_sync(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    empty = f"sqlite:///{tmp_path}/empty.sqlite"
    cfg.CONF.set_override("connection", empty, group="database")
    for args in (("zone", "list"), ("job", "list")):
        code, _, err = run(capsys, *args)
        assert code == 1
        assert "run 'zoneflow db sync'" in err


def test_pool_show_hides_target_secrets_and_shows_the_catalog(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "pools.yaml"
    path.write_text(
        fake_pool_yaml({"api_key": "s3cr3t-api-key", "tsig_key_name": "xfr-key"})
        + "  catalog_zone: {catalog_zone_fqdn: catalog.example.org.}\n"
    )
    assert run(capsys, "pool", "update", "--file", str(path))[0] == 0
    code, out, _ = run(capsys, "--json", "pool", "show", "default")
    assert code == 0 and "s3cr3t-api-key" not in out
    options = json.loads(out)["targets"][0]["options"]
    assert options == {"api_key": "***", "tsig_key_name": "xfr-key"}
    code, out, _ = run(capsys, "pool", "show", "default")
    assert "catalog.example.org. (refresh 60s), provisioning per-zone" in out
    assert "s3cr3t-api-key" not in out


def test_flow_show_draws_the_retire_target_flow_without_a_pool(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "flow", "show", "retire-target", "--format", "dot")
    assert code == 0
    assert out.startswith('digraph "retire-target"')
    assert '"drain-target" -> "drop-target"' in out


def test_flow_show_of_an_unknown_flow_lists_the_flows_there_are(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "flow", "show", "nope")
    assert code == 1
    assert "there is no flow 'nope': choose one of create-zone, create-zones, delete-zone" in err
    assert "retire-target, update-zone" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--kind", "nsd"), "there is no local server kind 'nsd': choose one of bind9, knot"),
        (("--count", "0"), "cannot start 0 servers: ask for at least 1"),
    ],
)
def test_targets_up_refuses_what_it_cannot_run_and_starts_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, args: tuple[str, ...], message: str
) -> None:
    code, out, err = run(capsys, "targets", "up", *args, "--dir", str(tmp_path / "targets"))
    assert (code, out) == (1, "")
    assert err == f"zoneflow: error: {message}\n"
    assert not (tmp_path / "targets").exists()


def test_targets_up_needs_a_fixed_mdns_port(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    conf = tmp_path / "zoneflow.conf"
    conf.write_text("[mdns]\nport = 0\n")
    code, _, err = run(
        capsys, "--config-file", str(conf), "targets", "up", "--dir", str(tmp_path / "targets")
    )
    assert code == 1
    assert "[mdns] port is 0" in err and "set a fixed port" in err
    assert not (tmp_path / "targets").exists()
