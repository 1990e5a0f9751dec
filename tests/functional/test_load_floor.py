"""bench/load.py's floor of BIND9's own CPU, on real BIND9 servers: every operation it
prices is carried out (each zone added, transferred at its new serial, deleted, through
rndc and through a catalog zone) before its cost is read, and the report names each."""

from __future__ import annotations

import pathlib

from bench import load_floor, load_report


def test_bind9s_cpu_is_read_after_every_operation_was_served(tmp_path: pathlib.Path) -> None:
    # bind9_cpu waits for every zone to show each operation (the serial served, or
    # the zone gone) and fails with the server's address when one does not.
    cost = load_floor.bind9_cpu(10, tmp_path, queries=500)

    assert list(cost) == list(load_floor.OPERATIONS)
    assert all(value >= 0 for value in cost.values()), cost
    # Ten zones added through rndc cost named some CPU whatever the machine.
    assert cost["addzone"] > 0, cost
    text = load_floor.describe_cpu(cost, load_report.DESIGNATE_MIX, 8, "rndc")
    assert all(what in text for what in load_floor.OPERATIONS.values())
    assert "with rndc provisioning (this run's)" in text
