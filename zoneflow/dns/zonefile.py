"""Zone files (RFC 1035 master files): a stored zone written as one, and one read back.

``render`` writes what mdns serves: the SOA and apex NS zoneflow derives
(:mod:`zoneflow.dns.zone`), then every recordset, names absolute. ``parse``
reads a zone file for an import with dnspython (its plain lines split by
:mod:`zoneflow.dns.zonefile_reader`, the rest by dnspython's tokenizer) and checks each
record as the API checks a recordset, as soon as it is read, then the whole
zone against :mod:`zoneflow.dns.rules`; the first problem raises
:class:`~zoneflow.exceptions.InvalidZoneFile` naming its line, without the
rest being read, so an import is all or nothing and a bad file fails fast.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.tokenizer
import dns.transaction
import dns.zonefile

from zoneflow import exceptions, objects
from zoneflow.dns import rules, validation, zonefile_reader
from zoneflow.dns import zone as dns_zone

# --- writing ---------------------------------------------------------------


def render(
    zone: objects.Zone, pool: objects.Pool, records: Iterable[tuple[str, str, int | None, str]]
) -> str:
    """The zone file of ``zone``: ``$ORIGIN`` and ``$TTL``, the apex SOA and NS, then
    ``records`` (owner, type, TTL or None for the zone's, data) in the order given."""
    lines = [
        f"; {zone.name} at serial {zone.serial}, exported by zoneflow",
        f"$ORIGIN {zone.name}",
        f"$TTL {zone.ttl}",
    ]
    lines += [rrset.to_text() for rrset in dns_zone.apex_rrsets(zone, pool)]
    for owner, rtype, ttl, data in records:
        lines.append(f"{owner} {zone.ttl if ttl is None else ttl} IN {rtype} {data}")
    return "\n".join(lines) + "\n"


# --- reading ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RecordSet:
    name: str
    type: str
    ttl: int | None  # None: the zone's
    records: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ParsedZone:
    """What an imported zone file holds, checked and in zoneflow's canonical form."""

    name: str
    email: str
    ttl: int
    refresh: int
    retry: int
    expire: int
    minimum: int
    recordsets: tuple[RecordSet, ...]

    @property
    def records(self) -> int:
        return sum(len(rs.records) for rs in self.recordsets)


# Records a zone file may make per byte of its size: more than one a line
# could spell out. Only ``$GENERATE`` (one line, any number of records) can
# pass it, and it would otherwise take a small body past [api] max_import_size.
_BYTES_PER_RECORD = 8

_ORIGIN = re.compile(r"^\$ORIGIN[ \t]+(\S+)", re.IGNORECASE | re.MULTILINE)


def parse(text: str) -> ParsedZone:
    """Read and check a zone file; InvalidZoneFile names the first bad line.

    The zone is the first ``$ORIGIN``; its SOA, which must be the file's
    first record, gives the email (RNAME), the TTL and the timers (its
    serial is not kept: zoneflow numbers its own). The apex NS records are
    left out: a zone's NS records come from its pool's ns_records.
    ``$INCLUDE`` is refused.

    Records are checked one by one as they are read, in the file's order:
    a file that does not start with its zone's SOA, or holds a bad record,
    is refused at that line without the rest being read.
    """
    found = _ORIGIN.search(text)
    if found is None:
        raise exceptions.InvalidZoneFile(
            "the zone file has no $ORIGIN line: start it with the zone's name, "
            "e.g. '$ORIGIN example.com.'"
        )
    try:
        origin = dns.name.from_text(found.group(1))
    except dns.exception.DNSException as exc:
        line = text.count("\n", 0, found.start()) + 1
        raise exceptions.InvalidZoneFile(
            f"line {line}: $ORIGIN {found.group(1)} is not a domain name ({exc})"
        ) from None
    name = validation.zone_name(origin.to_text())
    collector = _Collector(origin, name, max_records=len(text) // _BYTES_PER_RECORD + 100)
    reader = zonefile_reader.LineReader(text, collector)
    try:
        reader.read()
    except exceptions.InvalidInput as exc:
        raise exceptions.InvalidZoneFile(
            f"{_where(text, reader.position())}: {exc.message}"
        ) from None
    except Exception as exc:  # dnspython's errors come in many classes
        raise exceptions.InvalidZoneFile(
            f"{_where(text, reader.position())}: {_described(exc)}"
        ) from None
    parsed = collector.parsed()
    try:
        rules.check(name, [rules.Shape(rs.name, rs.type) for rs in parsed.recordsets])
    except exceptions.InvalidInput as exc:
        raise exceptions.InvalidZoneFile(exc.message) from None
    return parsed


def _where(text: str, position: int) -> str:
    """``line N (its text)`` of the record being read, the text cut short if long.

    N is the line of the last character the tokenizer read that is not a
    newline: the tokenizer reads a record's end of line before the record
    is added, so this names the record's line where the tokenizer's own
    count (the line after) would not.
    """
    read = text[:position].rstrip("\n")
    number = read.count("\n") + 1
    lines = text.splitlines()
    shown = lines[number - 1].strip() if 0 < number <= len(lines) else ""
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"line {number} ({shown})" if shown else f"line {number}"


@dataclasses.dataclass(eq=False)
class _Owner:
    """An owner name met in the file, with what was worked out about it once."""

    name: dns.name.Name  # as first read
    text: str  # its text
    inside: bool  # at or below the zone's origin
    apex: bool
    types: set[dns.rdatatype.RdataType] | None = None  # None until a record there is kept


@dataclasses.dataclass(eq=False)
class _Collected:
    name: str
    ttl: int
    records: list[str]
    seen: set[str]  # the records again, to find a repeated one without a scan


class _Collector:
    """What dnspython's zone file reader writes each record to, checking it at once.

    It stands in for the zone transaction the reader expects (``add`` and
    the few calls around it) and keeps recordsets as zoneflow stores them,
    so no zone is built in memory and every record is parsed once. Each
    record is checked as the API checks a recordset: a type zoneflow
    serves, valid data, a name inside the zone, no CNAME beside other data.
    What depends on the owner name only is worked out once a name, as a
    large zone repeats its names.
    """

    def __init__(self, origin: dns.name.Name, zone: str, *, max_records: int) -> None:
        self.origin = origin
        self.zone = zone
        self.max_records = max_records
        self.count = 0
        self.soa: dns.rdtypes.ANY.SOA.SOA | None = None
        self.soa_ttl = 0
        self.owners: dict[dns.name.Name, _Owner] = {}
        self.sets: dict[tuple[_Owner, dns.rdatatype.RdataType], _Collected] = {}
        self.manager = self

    # -- what the reader calls ---------------------------------------------------------

    def origin_information(self) -> tuple[dns.name.Name, bool, None]:
        # The root, not the zone's origin: told its real origin, the reader
        # skips without a word a record whose owner lies outside it, which an
        # import must refuse instead (add() does, naming its line).
        return dns.name.root, False, None

    def check_put_rdataset(self, _check: object) -> None:
        """The reader's own CNAME check; add() makes it, on the records as read."""

    def _set_origin(self, _origin: dns.name.Name) -> None:
        """A ``$ORIGIN`` line: names arrive absolute, so there is nothing to keep."""

    def add_unicode(self, _value: str) -> None:
        """A ``$UNICODE`` line: names arrive parsed."""

    def add(self, name: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata) -> None:
        self.count += 1
        if self.count > self.max_records:
            raise exceptions.InvalidZoneFile(
                f"the zone file makes more than {self.max_records} records, more than a file "
                "of its size can hold one a line: write fewer $GENERATE records"
            )
        if self.soa is None:
            self._first(name, ttl, rdata)
            return
        rdtype = rdata.rdtype
        owner = self.owners.get(name)
        if owner is None:
            owner = self.owners[name] = _Owner(
                name=name,
                text=name.to_text(),
                inside=name.is_subdomain(self.origin),
                apex=name == self.origin,
            )
        if not owner.inside:
            raise exceptions.InvalidZoneFile("the record lies outside the zone ($ORIGIN)")
        if rdtype == dns.rdatatype.SOA:
            if owner.apex:
                raise exceptions.InvalidZoneFile(
                    "a second SOA record: a zone has one, its first record"
                )
            raise exceptions.InvalidZoneFile("an SOA record belongs at the zone's origin only")
        if rdtype == dns.rdatatype.NS and owner.apex:
            return  # the pool's ns_records are the apex NS
        self._check(name, owner, ttl, rdtype)
        key = (owner, rdtype)
        collected = self.sets.get(key)
        data = rdata.to_text()
        if collected is None:
            # A recordset's name is spelt as its first record spells it (names
            # differing in case only are one name, perhaps spelt otherwise before).
            text = owner.text if name.labels == owner.name.labels else name.to_text()
            collected = self.sets[key] = _Collected(text, ttl=ttl, records=[data], seen={data})
        elif data not in collected.seen:
            # As an RRset: one TTL, the lowest given (RFC 2181 section 5.2).
            collected.ttl = min(collected.ttl, ttl)
            collected.records.append(data)
            collected.seen.add(data)
        if rdtype == dns.rdatatype.CNAME and len(collected.records) > 1:
            raise exceptions.InvalidRecordSetLocation(
                f"{name} has more than one CNAME record (RFC 1034 section 3.6.2)"
            )

    # -- the checks --------------------------------------------------------------------

    def _first(self, name: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata) -> None:
        """The first record: the zone's SOA, or the file is refused here and now."""
        if rdata.rdtype != dns.rdatatype.SOA or name != self.origin:
            raise exceptions.InvalidZoneFile(
                f"the zone file's first record is {dns.rdatatype.to_text(rdata.rdtype)} "
                f"{name}, not the SOA of {self.zone}: a zone file starts with its SOA"
            )
        assert isinstance(rdata, dns.rdtypes.ANY.SOA.SOA)
        validation.ttl(ttl)
        for timer in ("refresh", "retry", "expire", "minimum"):
            validation.ttl(getattr(rdata, timer), what=f"the SOA {timer}")
        self.soa, self.soa_ttl = rdata, ttl
        # The apex always holds the SOA and the pool's NS: a CNAME there is
        # refused at its own line, as beside any other data.
        self.owners[name] = _Owner(
            name=name,
            text=name.to_text(),
            inside=True,
            apex=True,
            types={dns.rdatatype.SOA, dns.rdatatype.NS},
        )

    def _check(
        self, name: dns.name.Name, owner: _Owner, ttl: int, rdtype: dns.rdatatype.RdataType
    ) -> None:
        types = owner.types
        if types is None:
            validation.recordset_name(owner.text, self.zone)
            types = owner.types = set()
        if rdtype not in types:
            validation.record_type(_type_text(rdtype))
            types.add(rdtype)
        validation.ttl(ttl)
        if dns.rdatatype.CNAME in types and len(types) > 1:
            others = ", ".join(sorted(_type_text(t) for t in types - {dns.rdatatype.CNAME}))
            raise exceptions.InvalidRecordSetLocation(
                f"{name} has a CNAME and {others} data; a CNAME cannot share its name with "
                "any other record (RFC 1034 section 3.6.2)"
            )

    # -- the result --------------------------------------------------------------------

    def parsed(self) -> ParsedZone:
        if self.soa is None:
            raise exceptions.InvalidZoneFile(
                f"the zone file has no SOA record for {self.zone}: a zone file starts with its SOA"
            )
        recordsets = tuple(
            RecordSet(
                name=collected.name,
                type=_type_text(rdtype),
                ttl=None if collected.ttl == self.soa_ttl else int(collected.ttl),
                records=tuple(collected.records),
            )
            for (_, rdtype), collected in self.sets.items()
        )
        return ParsedZone(
            name=self.zone,
            email=validation.email(_rname_to_email(self.soa.rname)),
            ttl=int(self.soa_ttl),
            refresh=int(self.soa.refresh),
            retry=int(self.soa.retry),
            expire=int(self.soa.expire),
            minimum=int(self.soa.minimum),
            recordsets=recordsets,
        )


@functools.cache
def _type_text(rdtype: dns.rdatatype.RdataType) -> str:
    return dns.rdatatype.to_text(rdtype)


def _described(exc: Exception) -> str:
    """dnspython's message without its ``<zone file>:N:`` prefix (its N is off by one)."""
    text = str(exc) or type(exc).__name__
    return re.sub(r"^<zone file>:\d+: ", "", text).strip("'\"")


def _rname_to_email(rname: dns.name.Name) -> str:
    """hostmaster.example.com. -> hostmaster@example.com (the first label is the mailbox)."""
    if len(rname.labels) < 3:
        raise exceptions.InvalidZoneFile(
            f"the SOA's RNAME {rname} is not a mailbox: give e.g. hostmaster.example.com."
        )
    local = rname.labels[0].decode("ascii", errors="replace")
    domain = dns.name.Name(rname.labels[1:]).to_text(omit_final_dot=True)
    return f"{local}@{domain}"
