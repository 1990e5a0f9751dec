"""Differential: what zoneflow accepts, BIND9 and Knot load; what they refuse, zoneflow refused.

Hypothesis draws zone contents and sequences of changes from a small set of
names (the apex, delegations with glue below them, a DNAME's owner and a name
below it, wildcards) and of types. Each zone is rendered by the function
mdns serves transfers from (:func:`zoneflow.dns.zone.iter_rrsets`), written
out as a zone file, and loaded by ``named-checkzone`` (BIND9) and by
``knotc zone-check`` (Knot's offline load check), each set up as zoneflow's
targets load a zone: as secondaries, so BIND9 without its primary-only
integrity checks (``-i none``) and Knot with its mandatory semantic checks
only. Knot's ``kzonecheck`` (Debian's knot-dnssecutils) is not the judge: it
runs every semantic check a primary makes, and refuses what Knot loads as a
secondary (a delegation whose in-zone NS target has no glue, for one).

Two tests: the rules of :mod:`zoneflow.dns.rules` find a problem exactly when
a server refuses the zone; and through central, every accepted state loads
and every change refused by a rule would not have.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import pathlib
import subprocess
from collections.abc import Callable, Iterable, Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests import support
from tests.functional.conftest import MDNS_POOL
from tests.functional.fixtures.bind9 import Bind9Server
from tests.functional.fixtures.process import require_program
from tests.functional.test_mdns_bind9 import add_secondary, served_serial
from tests.support import eventually
from zoneflow import exceptions, objects
from zoneflow.central import pools
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.dns import rules
from zoneflow.dns import zone as dns_zone
from zoneflow.flows.propagation import PollForSerial
from zoneflow.jobs.outcomes import Served
from zoneflow.mdns import server as mdns_server
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import zones as stored_zones

pytestmark = pytest.mark.usefixtures("sqlite_database")

# Fixed examples and no shrinking database: CI replays the same draws, and a
# failure's draw goes below as an @example.
RULES = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CHANGES = settings(RULES, max_examples=20)

DS = "12345 8 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE5BEA7B17C2E8ACAE8D21CB9A"
# Relative names ("@" the apex): a delegation (sub) with glue and data below it,
# a DNAME's owner (d) with a name below it, wildcards, an underscore.
NAMES = ["@", "www", "sub", "ns.sub", "x.sub", "d", "x.d", "*", "*.sub", "_srv"]
# Each type's possible records, "{zone}" the zone's name.
DATA = {
    "A": ["192.0.2.1", "192.0.2.2"],
    "AAAA": ["2001:db8::1"],
    "CNAME": ["x.example.net.", "www.{zone}"],
    "DNAME": ["example.net.", "example.org."],
    "NS": ["ns.example.net.", "ns.sub.{zone}", "www.{zone}"],
    "MX": ["10 mail.{zone}"],
    "TXT": ['"t"', '"u"'],
    "DS": [DS],
}
# What users can write through central (DNAME is no type zoneflow takes, as in Designate).
WRITABLE = [rtype for rtype in DATA if rtype != "DNAME"]


@dataclasses.dataclass(frozen=True)
class Draft:
    """A recordset drawn: relative name, type, and which of DATA[type] it holds."""

    name: str
    type: str
    records: tuple[int, ...]

    def absolute(self, zone: str) -> str:
        return zone if self.name == "@" else f"{self.name}.{zone}"

    def data(self, zone: str) -> list[str]:
        return [DATA[self.type][i].format(zone=zone) for i in self.records]


def _drafts(types: list[str], *, singletons: bool = False) -> st.SearchStrategy[Draft]:
    """Drafts of ``types``; CNAME and DNAME with two records only if ``singletons`` (a
    rendered RRset keeps one: what central refuses of it is input, not a rule)."""

    def of_type(rtype: str) -> st.SearchStrategy[Draft]:
        most = 1 if rtype in ("CNAME", "DNAME") and not singletons else None
        indexes = st.sets(st.sampled_from(range(len(DATA[rtype]))), min_size=1, max_size=most)
        # The apex NS come from the pool's ns_records, never from a recordset.
        names = [n for n in NAMES if not (rtype == "NS" and n == "@")]
        return st.builds(
            Draft, st.sampled_from(names), st.just(rtype), indexes.map(lambda s: tuple(sorted(s)))
        )

    return st.sampled_from(types).flatmap(of_type)


def _zone_contents() -> st.SearchStrategy[list[Draft]]:
    return st.lists(
        _drafts(list(DATA), singletons=True), max_size=6, unique_by=lambda d: (d.name, d.type)
    )


# --- the nameservers' verdicts ---------------------------------------------------------------


class Loaders:
    """named-checkzone and knotc zone-check, run side by side on one zone file."""

    def __init__(self, workdir: pathlib.Path, zone: str) -> None:
        self.zone = zone
        self.path = workdir / f"{zone}zone"
        self.named_checkzone = require_program("named-checkzone")
        self.knotc = require_program("knotc")
        self.knot_conf = workdir / "knot.conf"
        # Knot's default for a zone: mandatory semantic checks only, as its targets.
        self.knot_conf.write_text(
            "server:\n"
            f'    rundir: "{workdir}"\n'
            "database:\n"
            f'    storage: "{workdir}/knotdb"\n'
            "zone:\n"
            f"  - domain: {zone}\n"
            f'    file: "{self.path}"\n'
            "    semantic-checks: off\n"
        )
        (workdir / "knotdb").mkdir(exist_ok=True)

    def refusals(self, text: str) -> dict[str, str]:
        """Each server that refuses to load ``text``, with what it said."""
        self.path.write_text(text)
        runs = {
            "BIND9": subprocess.Popen(
                [self.named_checkzone, "-i", "none", "-k", "warn", self.zone, str(self.path)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
            "Knot": subprocess.Popen(
                [self.knotc, "-c", str(self.knot_conf), "zone-check", self.zone],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
        }
        said = {server: run.communicate(timeout=60) for server, run in runs.items()}
        return {server: said[server][0] for server, run in runs.items() if run.returncode != 0}


def _served(zone: objects.Zone, pool: objects.Pool, recordsets: Iterable[objects.RecordSet]) -> str:
    """The zone as mdns transfers it (SOA, apex NS, recordsets), as a zone file."""
    return "".join(rrset.to_text() + "\n" for rrset in dns_zone.iter_rrsets(zone, pool, recordsets))


_zone_numbers = itertools.count(1)


def _new_zone() -> tuple[objects.Zone, objects.Pool]:
    zone = central_zones.create_zone(f"z{next(_zone_numbers)}.example.", "hostmaster@example.com")
    return zone, stored_pools.get_pool(zone.pool_id)


def _recordset(zone: objects.Zone, draft: Draft) -> objects.RecordSet:
    """A recordset as storage would hand it to mdns, not stored."""
    return objects.RecordSet(
        id=f"{draft.name}-{draft.type}",
        zone_id=zone.id,
        name=draft.absolute(zone.name),
        type=draft.type,
        ttl=None,
        records=tuple(draft.data(zone.name)),
        serial=zone.serial,
        status=objects.Status.ACTIVE,
        action=objects.Action.NONE,
        created_at=datetime.datetime(2026, 1, 1),
        updated_at=None,
    )


@pytest.fixture
def loaders(tmp_path: pathlib.Path) -> Iterator[Loaders]:
    # One zone name for all files: each test's zones are rendered under it.
    yield Loaders(tmp_path, "rules.example.")


# --- the rules agree with the servers ---------------------------------------------------------


@RULES
@given(contents=_zone_contents())
@example(contents=[Draft("@", "CNAME", (0,))])
@example(contents=[Draft("d", "DNAME", (0,)), Draft("x.d", "A", (0,))])
@example(contents=[Draft("@", "DNAME", (0,)), Draft("www", "TXT", (0,))])
@example(contents=[Draft("d", "DNAME", (0,)), Draft("d", "NS", (0,))])
@example(contents=[Draft("*.sub", "NS", (0,))])
@example(contents=[Draft("@", "DS", (0,))])
@example(contents=[Draft("sub", "NS", (1,))])  # in-zone target below the cut, no glue
@example(contents=[Draft("sub", "NS", (2,))])  # in-zone target without addresses
# Found by this test: two CNAME records are served as one (a singleton RRset), and load.
@example(contents=[Draft("www", "CNAME", (0, 1))])
def test_the_rules_find_a_problem_exactly_when_a_nameserver_refuses_the_zone(
    loaders: Loaders, contents: list[Draft]
) -> None:
    zone, pool = _rules_zone()
    recordsets = [_recordset(zone, draft) for draft in contents]
    problems = rules.problems(zone.name, [rules.Shape(rs.name, rs.type) for rs in recordsets])
    text = _served(zone, pool, recordsets)
    refusals = loaders.refusals(text)
    assert bool(problems) == bool(refusals), (text, problems, refusals)


def _rules_zone() -> tuple[objects.Zone, objects.Pool]:
    """The zone the first test renders its drafts under (made once, as it never changes)."""
    zone = stored_zones.find_zone_for_mdns("rules.example.")
    if zone is None:
        zone = central_zones.create_zone("rules.example.", "hostmaster@example.com")
    return zone, stored_pools.get_pool(zone.pool_id)


# --- central agrees with the servers ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Change:
    """Create ``draft``, or delete the recordset at its name and type if there is one."""

    draft: Draft
    delete: bool = False


def _changes() -> st.SearchStrategy[list[Change]]:
    return st.lists(st.builds(Change, _drafts(WRITABLE), st.booleans()), min_size=1, max_size=6)


@CHANGES
@given(changes=_changes())
@example(changes=[Change(Draft("@", "CNAME", (0,)))])
@example(changes=[Change(Draft("www", "A", (0,))), Change(Draft("www", "CNAME", (0,)))])
@example(
    changes=[
        Change(Draft("sub", "NS", (1,))),
        Change(Draft("ns.sub", "A", (0,))),
        Change(Draft("sub", "DS", (0,))),
        Change(Draft("sub", "CNAME", (0,))),
    ]
)
def test_every_state_central_accepts_loads_and_every_refused_change_would_not(
    tmp_path: pathlib.Path, changes: list[Change]
) -> None:
    zone, pool = _new_zone()
    check = Loaders(tmp_path, zone.name)
    for change in changes:
        draft = change.draft
        name = draft.absolute(zone.name)
        if change.delete:
            there = [
                rs
                for rs in stored_reads.list_recordsets(zone.id)
                if (rs.name, rs.type) == (name, draft.type)
            ]
            for recordset in there:
                central_recordsets.delete_recordset(zone.name, recordset.id)
            continue
        current = stored_reads.list_recordsets(zone.id)
        if any((rs.name, rs.type) == (name, draft.type) for rs in current):
            continue  # a duplicate: refused for that, not for a rule
        try:
            central_recordsets.create_recordset(
                zone.name, draft.name, draft.type, draft.data(zone.name)
            )
        except exceptions.InvalidRecordSetLocation as refusal:
            would_be = _served(
                stored_reads.get_zone(zone.id), pool, [*current, _recordset(zone, draft)]
            )
            assert check.refusals(would_be), (refusal.message, would_be)
            continue
        served = _served(
            stored_reads.get_zone(zone.id), pool, stored_reads.list_recordsets(zone.id)
        )
        assert not check.refusals(served), served


# --- a zone stored before the rules: the job's error says why the nameserver refuses it ----


def test_a_poll_that_times_out_on_data_bind9_refuses_names_the_reason(
    bind9: Bind9Server,
    mdns: mdns_server.MdnsServer,
    zone: objects.Zone,
    override: Callable[..., None],
) -> None:
    # BIND9 is one of the pool's nameservers: the poll waits for it (and NOTIFYs it).
    pool = MDNS_POOL + f"  nameservers: [{{host: {bind9.host}, port: {bind9.port}}}]\n"
    pools.store(pools.parse(pool))
    add_secondary(bind9, mdns, zone.name)
    eventually(lambda: served_serial(bind9, zone.name) == zone.serial, timeout=30)
    # As a CNAME at the apex was accepted before the rules: straight into storage.
    support.write_recordset_unchecked(zone.id, zone.name, "CNAME", ["elsewhere.example.net."])
    serial = stored_reads.get_zone(zone.id).serial
    override("flows", poll_timeout=4, renotify_interval=1, poll_interval=0.2)
    seen = Served(**PollForSerial(bind9.host, bind9.port).execute(zone.id, zone.name, serial))
    assert (seen.ok, seen.serial) == (False, zone.serial), seen
    assert "refuses to load" in str(seen.error), seen.error
    assert "CNAME cannot be at the apex" in str(seen.error), seen.error
    # The reason is the one BIND9 gave, not a guess.
    assert "CNAME and other data" in bind9.log_path.read_text(errors="replace")
