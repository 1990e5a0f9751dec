"""The CLI's read commands (zone list, zone show) on PostgreSQL: a plain SQLAlchemy
engine (no oslo.db) reads what central wrote, and loads psycopg2 for it."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import pytest

from tests import support
from tests.integration.test_cli_behaves import NOT_FOR_READS, _imported, _report_imports, _zoneflow
from zoneflow.central import zones as central_zones

POOL = """
- name: default
  ns_records: [{hostname: ns1.example.org., priority: 1}]
  targets: [{type: fake, description: fake}]
"""


@pytest.fixture
def config(postgres_database: str, tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    with support.database(postgres_database, pools_yaml=POOL) as url:
        path = tmp_path / "zoneflow.conf"
        path.write_text(f"[database]\nconnection = {url}\n")
        yield path


def test_read_commands_read_postgresql_without_oslo_db(config: pathlib.Path) -> None:
    zone = central_zones.create_zone("pg.example.", "h@e.com")
    names = (*NOT_FOR_READS, "psycopg2")

    listed = _zoneflow(config, "zone", "list", "--json", code=_report_imports(names))
    assert listed.returncode == 0, listed.stderr
    assert [(z["name"], z["id"]) for z in json.loads(listed.stdout)] == [("pg.example.", zone.id)]
    assert _imported(listed) == ["psycopg2"]

    shown = _zoneflow(config, "zone", "show", "pg.example", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["serial"] == central_zones.get_zone(zone.id).serial
