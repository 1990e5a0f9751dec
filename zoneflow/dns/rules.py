"""What a zone must keep for every nameserver to load it.

A nameserver that meets one of these in a transfer refuses the whole zone
(BIND9: "CNAME and other data", Knot: "another record exists beside CNAME"),
keeps serving the old serial and asks again and again. So zoneflow refuses the
change that would break one, naming the records, before it is stored.

The rules are those BIND9 9.18 and Knot 3.2 really enforce when they load a
zone as secondaries (what zoneflow's targets are), and no more; the
differential test (tests/functional/test_zone_rules.py) checks the zone file
mdns would serve against ``named-checkzone`` and ``knotc zone-check``:

- a CNAME is alone at its name (RFC 1034 section 3.6.2); the apex always
  holds the SOA and NS zoneflow writes, so a CNAME is never at the apex;
- a DNAME has no CNAME beside it, no NS beside it below the apex (Knot), and
  no name exists below it (RFC 6672 section 2.3, Knot);
- NS records are not at a wildcard name (BIND9: "invalid NS owner name");
- a DS record is not at the apex (BIND9: "DS record at top of zone"; the DS
  of a zone lives in its parent);
- every name lies inside the zone.

Missing glue or an NS target without addresses is left alone: named-checkzone
warns about it, and both servers load the zone. A second CNAME or DNAME
record is no matter for these rules: a recordset is served as one RRset, in
which dnspython keeps one record of such a type (and
:func:`zoneflow.dns.validation.records` refuses a second CNAME as input).

Rules are checked on recordset shapes (name and type): neither the data of a
record nor how many a recordset holds matters to any of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from zoneflow import exceptions

# The apex sets zoneflow derives from the zone and its pool (dns.zone.apex_rrsets):
# never stored as recordsets, always there.
APEX_TYPES = ("SOA", "NS")


@dataclasses.dataclass(frozen=True)
class Shape:
    """A recordset as the rules see it: absolute owner name and type."""

    name: str
    type: str


@dataclasses.dataclass(frozen=True)
class Problem:
    """One broken rule: what a nameserver would refuse, and how to mend it.

    Two problems are the same when they break the same rule with the same
    records, which tells a change that adds a problem from one that only
    leaves an older one in place.
    """

    rule: str
    name: str
    involved: tuple[str, ...]
    message: str


def apex(zone: str) -> list[Shape]:
    """The SOA and NS at the apex of ``zone``, which every zone zoneflow serves holds."""
    return [Shape(zone, rtype) for rtype in APEX_TYPES]


def problems(zone: str, recordsets: Iterable[Shape]) -> list[Problem]:
    """Every rule ``recordsets`` (with the apex SOA and NS added) break, by name."""
    names: dict[str, set[str]] = {}
    for shape in [*apex(zone), *recordsets]:
        names.setdefault(shape.name, set()).add(shape.type)
    found: list[Problem] = []
    for name in sorted(names):
        found += _at_name(zone, name, names[name])
        if "DNAME" in names[name]:
            found += _below_dname(name, names)
    return found


def check(zone: str, recordsets: Iterable[Shape], *, before: Iterable[Shape] = ()) -> None:
    """Raise InvalidRecordSetLocation for the first problem of ``recordsets`` that
    ``before`` (the same names before the change) did not have.

    A problem already there before (data stored before these rules) does not
    block an unrelated change, and a change that removes it goes through.
    """
    known = set(problems(zone, before))
    for problem in problems(zone, recordsets):
        if problem not in known:
            raise exceptions.InvalidRecordSetLocation(problem.message)


def _at_name(zone: str, name: str, types: set[str]) -> list[Problem]:
    found: list[Problem] = []
    if name != zone and not name.endswith("." + zone):
        found.append(
            Problem(
                "out-of-zone",
                name,
                tuple(sorted(types)),
                f"{name} is outside zone {zone}: a zone holds only names ending in .{zone}",
            )
        )
    if "CNAME" in types and len(types) > 1:
        found.append(_cname_beside(zone, name, types))
    if "DNAME" in types and "NS" in types and name != zone:
        found.append(
            Problem(
                "dname-ns",
                name,
                ("DNAME", "NS"),
                f"{name} has a DNAME and NS records: below the apex a DNAME cannot share "
                "its name with a delegation (Knot refuses the zone): delete one of them",
            )
        )
    if "NS" in types and name.startswith("*."):
        found.append(
            Problem(
                "wildcard-ns",
                name,
                ("NS",),
                f"{name} is a wildcard and cannot hold NS records (BIND9 refuses the zone): "
                "delegate a name without '*'",
            )
        )
    if "DS" in types and name == zone:
        found.append(
            Problem(
                "apex-ds",
                name,
                ("DS",),
                f"a DS record cannot be at the apex of {zone}: the DS of a zone belongs in "
                "its parent zone (RFC 4034 section 5); put DS records at a delegation "
                "below the apex",
            )
        )
    return found


def _cname_beside(zone: str, name: str, types: set[str]) -> Problem:
    others = tuple(sorted(types - {"CNAME"}))
    if name == zone:
        message = (
            f"a CNAME cannot be at the apex of {zone}: the apex holds the zone's SOA and "
            "NS records, and a CNAME cannot share its name with any other record "
            "(RFC 1034 section 3.6.2); give the apex A/AAAA records instead, or put the "
            "CNAME on a name below it, e.g. www"
        )
    else:
        message = (
            f"{name} has a CNAME and {', '.join(others)} data: a CNAME cannot share its "
            "name with any other record (RFC 1034 section 3.6.2): use another name, or "
            "delete the other recordset first"
        )
    return Problem("cname-exclusive", name, ("CNAME", *others), message)


def _below_dname(owner: str, names: dict[str, set[str]]) -> list[Problem]:
    below = tuple(sorted(name for name in names if name.endswith("." + owner)))
    if not below:
        return []
    shown = ", ".join(below[:3]) + (f" and {len(below) - 3} more" if len(below) > 3 else "")
    return [
        Problem(
            "below-dname",
            owner,
            below,
            f"{owner} has a DNAME, and names below it hold data ({shown}): a DNAME "
            "redirects everything below its name, so nothing can live there "
            "(RFC 6672 section 2.3): move that data or the DNAME",
        )
    ]
