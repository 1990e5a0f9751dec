"""pools.yaml is validated whole before anything is stored."""

from __future__ import annotations

import pathlib

import pytest

from zoneflow import exceptions
from zoneflow.central import pools
from zoneflow.central import zones as central_zones
from zoneflow.storage import pools as stored_pools

GOOD = """
- name: default
  description: two BIND9 servers
  threshold_percentage: 50
  ns_records:
    - {hostname: ns1.example.org., priority: 1}
    - {hostname: ns2.example.org., priority: 2}
  nameservers:
    - {host: 127.0.0.1, port: 5301}
    - {host: 127.0.0.1, port: 5302}
  targets:
    - type: bind9
      description: bind-1
      masters: [{host: 127.0.0.1, port: 5354}]
      options: {host: 127.0.0.1, port: 5301, rndc_port: 9531}
    - type: bind9
      description: bind-2
      masters: [{host: 127.0.0.1, port: 5354}]
      options: {host: 127.0.0.1, port: 5302, rndc_port: 9532}
  also_notifies:
    - {host: 127.0.0.1, port: 5399}
"""


def test_a_designate_style_pools_file_is_stored(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "pools.yaml"
    path.write_text(GOOD)
    (update,) = pools.update(str(path))
    stored = stored_pools.get_pool("default")
    assert stored == update.pool
    assert stored.threshold_percentage == 50
    assert [t.label for t in stored.targets] == ["bind-1", "bind-2"]
    assert [str(n) for n in stored.nameservers] == ["127.0.0.1:5301", "127.0.0.1:5302"]
    assert [r.hostname for r in stored.ns_records] == ["ns1.example.org.", "ns2.example.org."]
    assert stored.targets[0].options["rndc_port"] == 9531
    assert str(stored.also_notifies[0]) == "127.0.0.1:5399"


def test_loading_the_same_file_twice_keeps_target_ids(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "pools.yaml"
    path.write_text(GOOD)
    first = pools.update(str(path))[0].pool
    path.write_text(GOOD.replace("rndc_port: 9531", "rndc_port: 9999"))
    second = pools.update(str(path))[0].pool
    assert [t.id for t in first.targets] == [t.id for t in second.targets]
    assert second.targets[0].options["rndc_port"] == 9999
    assert len(stored_pools.list_pools()) == 1


DEFAULT_POOL_ID = "794ccc2c-d751-44fe-b57f-8894c9f5c842"  # Designate's default pool


def test_a_pool_keeps_the_id_the_file_gives(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "pools.yaml"
    path.write_text(GOOD.replace("- name: default", f"- id: {DEFAULT_POOL_ID}\n  name: default"))
    (update,) = pools.update(str(path))
    assert update.pool.id == DEFAULT_POOL_ID
    assert stored_pools.get_pool(DEFAULT_POOL_ID).name == "default"
    zone = central_zones.create_zone("example.com.", "h@example.com", pool=DEFAULT_POOL_ID)
    assert zone.pool_id == DEFAULT_POOL_ID


def test_a_pool_found_by_its_id_is_renamed(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "pools.yaml"
    path.write_text(GOOD.replace("- name: default", f"- id: {DEFAULT_POOL_ID}\n  name: default"))
    pools.update(str(path))
    path.write_text(GOOD.replace("- name: default", f"- id: {DEFAULT_POOL_ID}\n  name: main"))
    (update,) = pools.update(str(path))
    assert (update.pool.id, update.pool.name) == (DEFAULT_POOL_ID, "main")
    assert [p.name for p in stored_pools.list_pools()] == ["main"]


def test_a_pool_id_cannot_change(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "pools.yaml"
    path.write_text(GOOD)
    (first,) = pools.update(str(path))
    path.write_text(GOOD.replace("- name: default", f"- id: {DEFAULT_POOL_ID}\n  name: default"))
    with pytest.raises(exceptions.InvalidPoolConfig, match=f"has id {first.pool.id}"):
        pools.update(str(path))
    assert [p.id for p in stored_pools.list_pools()] == [first.pool.id]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("- name: x\n  targets: [", "not valid YAML at line"),
        ("name: default", "must be a YAML list of pools"),
        ("- description: nameless", "has no name"),
        (GOOD.replace("threshold_percentage: 50", "threshold_percentage: 150"), "1 to 100"),
        (
            GOOD.replace("host: 127.0.0.1, port: 5301}", "host: ns.example, port: 5301}"),
            "must be an IP address",
        ),
        (GOOD.replace("port: 5302}", "port: 70000}"), "from 1 to 65535"),
        (
            GOOD.replace(
                "    - type: bind9\n      description: bind-2", "    - description: bind-2"
            ),
            "has no type",
        ),
        (GOOD.replace("  also_notifies:", "  bogus: 1\n  also_notifies:"), "unknown key"),
        (GOOD.replace("- name: default", "- id: default\n  name: default"), "is not a UUID"),
        (
            GOOD.replace("hostname: ns2.example.org.", "hostname: ns2.example.org"),
            "hostname 'ns2.example.org' does not end with a dot",
        ),
        (GOOD.replace("port: 5302, rndc_port: 9532", "port: 5301, rndc_port: 9532"), "same server"),
        (
            GOOD.replace(
                "      masters: [{host: 127.0.0.1, port: 5354}]\n"
                "      options: {host: 127.0.0.1, port: 5302",
                "      options: {host: 127.0.0.1, port: 5302",
            ),
            "masters must list mdns",
        ),
    ],
)
def test_a_bad_pools_file_is_refused_and_changes_nothing(
    tmp_path: pathlib.Path, text: str, complaint: str
) -> None:
    path = tmp_path / "pools.yaml"
    path.write_text(text)
    with pytest.raises(exceptions.InvalidPoolConfig, match=complaint):
        pools.update(str(path))
    assert stored_pools.list_pools() == []


def test_a_missing_pools_file_is_named() -> None:
    with pytest.raises(exceptions.InvalidPoolConfig, match="cannot read pools file /nope.yaml"):
        pools.update("/nope.yaml")
