"""bench/load.py's floor: what BIND9 alone needs, measured in the same run before the load.

* **Latency** (``bind9_floors``): on a BIND9 pair of its own, ``rndc addzone``
  of a secondary until it serves the zone, and a NOTIFY of a new serial until
  the secondary serves that serial; with the settings the targets have
  (RECOMMENDED_OPTIONS), and the NOTIFY again with BIND9's defaults.
* **CPU** (``bind9_cpu``): what ``named`` itself spends (from /proc) for each
  operation a change costs a target, on a secondary fed by a BIND9 primary
  (OPERATIONS): a zone added or deleted through rndc or through a catalog
  zone, a new serial NOTIFYed and transferred, an SOA query. Weighted by
  the load's mix and multiplied by the targets, it is what BIND9 alone costs
  per change: the machine's ceiling if zoneflow cost nothing.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import socket
import time
from collections.abc import Iterator, Mapping, Sequence

import dns.exception
import dns.message
import dns.rdatatype

from bench.orchestration import cpu_seconds
from tests.functional.deployment import soa_serial, soa_serials
from tests.functional.fixtures.bind9 import RECOMMENDED_OPTIONS, Bind9Server
from tests.functional.fixtures.ports import wait_for

#: The zones measured here live on BIND9 servers of their own, never in the load.
SUFFIX = "floor.example."

#: The operations bind9_cpu measures, in the order reported, and what each is.
OPERATIONS = {
    "addzone": "a secondary zone added with `rndc addzone`, its first transfer included",
    "catalog-add": "a secondary zone added through a catalog zone, its first transfer included",
    "notify": "a NOTIFY of a new serial, its transfer included",
    "delzone": "a zone deleted with `rndc delzone -clean`",
    "catalog-remove": "a zone deleted through a catalog zone",
    "soa": "an SOA query answered",
}


def bind9_floors(samples: int, workdir: pathlib.Path) -> dict[str, list[float]]:
    """Seconds until served, by floor: ``addzone``, ``notify`` (RECOMMENDED_OPTIONS)
    and ``notify-defaults`` (BIND9's own settings)."""
    floors: dict[str, list[float]] = {}
    for key, options in (("", RECOMMENDED_OPTIONS), ("-defaults", ())):
        addzone, notify = _floor_pair(samples, workdir / f"floor{key}", options)
        if not key:
            floors["addzone"] = addzone
        floors[f"notify{key}"] = notify
    return floors


def _floor_pair(
    samples: int, workdir: pathlib.Path, options: Sequence[str]
) -> tuple[list[float], list[float]]:
    from bench.propagation import wait_served
    from zoneflow.dns import query

    primary = Bind9Server(workdir=workdir / "primary")
    secondary = Bind9Server(workdir=workdir / "secondary", options=options)
    addzone, notify = [], []
    with primary, secondary:
        for i in range(samples):
            zone = f"floor{i}.{SUFFIX}"
            _write_primary_zone(primary, f"floor{i}", serial=1)
            primary.rndc("addzone", zone, f'{{ type primary; file "floor{i}.zone"; }};')
            started = time.monotonic()
            secondary.rndc("addzone", zone, _secondary_of(primary, f"floor{i}"))
            addzone.append(wait_served(zone, secondary, started))
            _write_primary_zone(primary, f"floor{i}", serial=2)
            primary.rndc("reload", zone)
            wait_for(lambda z=zone: soa_serial(z, primary.host, primary.port) == 2, timeout=30)  # type: ignore[misc]
            started = time.monotonic()
            query.send_notify(zone, secondary.host, secondary.port, serial=2)
            wait_for(
                lambda z=zone: soa_serial(z, secondary.host, secondary.port) == 2,  # type: ignore[misc]
                timeout=30,
                interval=0.005,
            )
            notify.append(time.monotonic() - started)
    return addzone, notify


def bind9_cpu(zones: int, workdir: pathlib.Path, queries: int = 50000) -> dict[str, float]:
    """Milliseconds of named's CPU per operation (OPERATIONS), on the secondary.

    ``zones`` zones on a primary of their own; each operation is done to every
    zone at once (as a batch of jobs does to a target) and named's CPU is read
    once every zone shows it and named has gone quiet.
    """
    primary = Bind9Server(workdir=workdir / "primary")
    secondary = Bind9Server(workdir=workdir / "secondary")
    catalog_name = f"catalog.cost.{SUFFIX}"
    names = [f"cost{i}.{SUFFIX}" for i in range(zones)]
    cost: dict[str, float] = {}
    with primary, secondary:
        for i, zone in enumerate(names):
            _write_primary_zone(primary, f"cost{i}", serial=1)
            primary.rndc("addzone", zone, f'{{ type primary; file "cost{i}.zone"; }};')
        (primary.workdir / "catalog.zone").write_text(_catalog_text(1, []))
        primary.rndc("addzone", catalog_name, '{ type primary; file "catalog.zone"; };')
        with _named_cpu(cost, "addzone", secondary, zones):
            for i, zone in enumerate(names):
                secondary.rndc("addzone", zone, _secondary_of(primary, f"cost{i}"))
            _wait_serials(secondary, names, 1)
        for i in range(zones):
            _write_primary_zone(primary, f"cost{i}", serial=2)
        primary.rndc("reload")
        _wait_serials(primary, names, 2)
        with _named_cpu(cost, "notify", secondary, zones):
            _notified_until_served(secondary, [(zone, 2) for zone in names], names, 2)
        with _named_cpu(cost, "soa", secondary, queries):
            _ask_soa(secondary, names, queries)
        with _named_cpu(cost, "delzone", secondary, zones):
            for zone in names:
                secondary.rndc("delzone", "-clean", zone)
            _wait_serials(secondary, names, None)
        consumer = Bind9Server(
            workdir=workdir / "consumer", catalog=(catalog_name, primary.host, primary.port)
        )
        with consumer:
            wait_for(
                lambda: soa_serial(catalog_name, consumer.host, consumer.port) == 1, timeout=30
            )
            for key, serial, members, served in (
                ("catalog-add", 2, names, 2),
                ("catalog-remove", 3, [], None),
            ):
                with _named_cpu(cost, key, consumer, zones):
                    (primary.workdir / "catalog.zone").write_text(_catalog_text(serial, members))
                    primary.rndc("reload", catalog_name)
                    _notified_until_served(consumer, [(catalog_name, serial)], names, served)
    return {name: cost[name] for name in OPERATIONS}


@contextlib.contextmanager
def _named_cpu(
    cost: dict[str, float], name: str, server: Bind9Server, count: int
) -> Iterator[None]:
    """Named's CPU over the block, per operation, into ``cost[name]`` (milliseconds).

    Work a transfer leaves behind (the zone's file written, its timers set) is
    part of its cost: the CPU is read once named has spent nothing for a tick.
    """
    assert server.process is not None
    pid = server.process.pid
    started = cpu_seconds([pid])
    yield
    last, deadline = cpu_seconds([pid]), time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = cpu_seconds([pid])
        if now == last:
            break
        last = now
    cost[name] = (last - started) * 1000 / count


def _notified_until_served(
    server: Bind9Server, notified: Sequence[tuple[str, int]], names: list[str], serial: int | None
) -> None:
    """NOTIFY ``server`` of each (zone, serial) of ``notified`` until it answers
    ``serial`` for every one of ``names``, again every few seconds. A secondary whose
    SOA query to a busy primary went unanswered tries again only after the zone's
    retry time (BIND9: 500 s at least), and one NOTIFY left the wait to time out on a
    busy machine."""
    from zoneflow.dns import query

    deadline = time.monotonic() + 120
    while True:
        for zone, notified_serial in notified:
            with contextlib.suppress(dns.exception.Timeout):
                query.send_notify(zone, server.host, server.port, serial=notified_serial)
        try:
            _wait_serials(server, names, serial, timeout=min(5.0, deadline - time.monotonic()))
            return
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise


def _wait_serials(
    server: Bind9Server, names: list[str], serial: int | None, *, timeout: float = 120
) -> None:
    wait_for(
        lambda: set(soa_serials(names, server.host, server.port).values()) == {serial},
        timeout=timeout,
        interval=0.05,
        what=f"{server.host}:{server.port} to answer serial {serial} for {len(names)} zones",
    )


def _ask_soa(server: Bind9Server, names: list[str], count: int) -> None:
    """``count`` SOA queries, one after another, each waiting for its answer."""
    wires = [dns.message.make_query(name, dns.rdatatype.SOA, flags=0).to_wire() for name in names]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        for wire in _cycle(wires, count):
            sock.sendto(wire, (server.host, server.port))
            sock.recv(4096)


def _cycle(items: list[bytes], count: int) -> Iterator[bytes]:
    for i in range(count):
        yield items[i % len(items)]


def _secondary_of(primary: Bind9Server, stem: str) -> str:
    return (
        f"{{ type secondary; primaries {{ {primary.host} port {primary.port}; }}; "
        f'file "{stem}.db"; }};'
    )


def _write_primary_zone(primary: Bind9Server, stem: str, *, serial: int) -> None:
    (primary.workdir / f"{stem}.zone").write_text(
        f"$TTL 300\n@ SOA ns1.{SUFFIX} hostmaster.{SUFFIX} {serial} 3600 600 86400 300\n"
        f"@ NS ns1.{SUFFIX}\nwww A 192.0.2.{serial}\n"
    )


def _catalog_text(serial: int, members: list[str]) -> str:
    """A catalog zone (RFC 9432, version 2) listing ``members``."""
    lines = [
        f"$TTL 0\n@ SOA invalid. invalid. {serial} 3600 600 86400 0\n@ NS invalid.\n",
        'version TXT "2"\n',
    ]
    lines += [f"m{i}.zones PTR {member}\n" for i, member in enumerate(members)]
    return "".join(lines)


def per_change(
    cost: dict[str, float], mix: Mapping[str, float], targets: int, provisioning: str
) -> float:
    """BIND9's CPU (ms) per change of ``mix`` (action → share) on ``targets`` targets:
    a create adds the zone and a delete removes it (through rndc or the catalog), an
    update is a NOTIFY and its transfer."""
    catalog = provisioning == "catalog"
    each = {
        "create": cost["catalog-add" if catalog else "addzone"],
        "update": cost["notify"],
        "delete": cost["catalog-remove" if catalog else "delzone"],
    }
    total = sum(mix.values())
    return targets * sum(each[action] * share / total for action, share in mix.items())


def describe_cpu(
    cost: dict[str, float], mix: Mapping[str, float], targets: int, provisioning: str
) -> str:
    """The report's paragraph on BIND9's own CPU: per operation, and per change of the mix
    on ``targets`` targets with either provisioning, with the changes a second this
    machine's cores could serve if BIND9 were all that ran."""
    cores = os.cpu_count() or 1
    rows = "".join(f"| {what} | {cost[name]:.3g} |\n" for name, what in OPERATIONS.items())
    ceilings = []
    for mode in ("rndc", "catalog"):
        each = per_change(cost, mix, targets, mode)
        used = " (this run's)" if mode == provisioning else ""
        ceilings.append(
            f"{each:.1f} ms with {mode} provisioning{used}, at most {cores * 1000 / each:.0f} "
            "changes a second"
        )
    return (
        "\n**BIND9's own CPU**, measured in the same run before the load on a secondary of "
        "its own fed by a BIND9 primary (named's CPU from /proc, each operation done to "
        "every one of a batch of zones at once, read once named was quiet again):\n\n"
        "| operation, on one target | named's CPU (ms) |\n| --- | ---: |\n"
        + rows
        + f"\nA change of this mix on {targets} targets costs BIND9 alone "
        + "; ".join(ceilings)
        + f" on these {cores} cores if nothing else ran (a catalog's transfer here "
        "carried every new member at once; under load a transfer carries one batch's).\n"
    )
