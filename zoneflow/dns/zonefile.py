"""Zone files (RFC 1035 master files): a stored zone written as one, and one read back.

``render`` writes what mdns serves: the SOA and apex NS zoneflow derives
(:mod:`zoneflow.dns.zone`), then every recordset, names absolute. ``parse``
reads a zone file for an import with dnspython and checks every record as
the API checks a recordset, then the whole zone against
:mod:`zoneflow.dns.rules`; the first problem raises
:class:`~zoneflow.exceptions.InvalidZoneFile` naming its line, so an import
is all or nothing.
"""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import Iterable

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.tokenizer
import dns.transaction
import dns.zone
import dns.zonefile

from zoneflow import exceptions, objects
from zoneflow.central import validation
from zoneflow.dns import rules
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


_ORIGIN = re.compile(r"^\$ORIGIN[ \t]+(\S+)", re.IGNORECASE | re.MULTILINE)


def parse(text: str) -> ParsedZone:
    """Read and check a zone file; InvalidZoneFile names the first bad line.

    The zone is the first ``$ORIGIN``; its SOA gives the email (RNAME), the
    TTL and the timers (its serial is not kept: zoneflow numbers its own).
    The apex NS records are left out: a zone's NS records come from its
    pool's ns_records. ``$INCLUDE`` is refused.
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
    source = _Source(text)
    checks = _Checks(name)
    zone = _ImportedZone(origin, relativize=False)
    try:
        with zone.writer(replacement=True) as txn:
            txn.check_put_rdataset(checks)
            tok = dns.tokenizer.Tokenizer(source, "<zone file>")
            dns.zonefile.Reader(tok, dns.rdataclass.IN, txn, allow_include=False).read()
    except exceptions.InvalidInput as exc:
        raise exceptions.InvalidZoneFile(f"{_line(text, source.line)}: {exc.message}") from None
    except Exception as exc:  # dnspython's errors come in many classes
        raise exceptions.InvalidZoneFile(f"{_line(text, source.line)}: {_described(exc)}") from None
    parsed = _parsed(zone, name)
    try:
        rules.check(name, [rules.Shape(rs.name, rs.type) for rs in parsed.recordsets])
    except exceptions.InvalidInput as exc:
        raise exceptions.InvalidZoneFile(exc.message) from None
    return parsed


def _line(text: str, number: int) -> str:
    """``line N (its text)``, the text cut short if long."""
    lines = text.splitlines()
    shown = lines[number - 1].strip() if 0 < number <= len(lines) else ""
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"line {number} ({shown})" if shown else f"line {number}"


class _ImportedZone(dns.zone.Zone):
    """A zone that lets its reader hand it names outside it.

    dnspython's reader skips, without a word, a record whose owner lies
    outside the zone's origin; an import must refuse it instead. Told the
    zone is the root, the reader passes every name on, and the zone's own
    check (the origin it really has) refuses the stranger, naming its line.
    """

    def origin_information(self) -> tuple[dns.name.Name | None, bool, dns.name.Name | None]:
        origin, relativize, effective = super().origin_information()
        return dns.name.root, relativize, effective


class _Source(io.StringIO):
    """The zone file as the tokenizer reads it, knowing the line being read.

    ``line`` is the line of the last character read that is not a newline:
    the tokenizer reads a record's end of line before the record is added,
    so this names the record's line where the tokenizer's own count (the
    line after) would not.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.line = 1
        self._newlines = 0

    def read(self, size: int | None = -1) -> str:
        text = super().read(size)
        for char in text:
            if char == "\n":
                self._newlines += 1
            else:
                self.line = self._newlines + 1
        return text


class _Checks:
    """Each record, as it is added: a type zoneflow serves, valid data, no CNAME
    beside other data."""

    def __init__(self, zone: str) -> None:
        self.zone = zone
        self.types: dict[dns.name.Name, set[str]] = {}

    def __call__(
        self,
        _txn: dns.transaction.Transaction,
        name: dns.name.Name,
        rdataset: dns.rdataset.Rdataset,
    ) -> None:
        rtype = dns.rdatatype.to_text(rdataset.rdtype)
        owner = name.to_text()
        if rtype == "SOA":
            soa = rdataset[0]
            validation.ttl(rdataset.ttl)
            for timer in ("refresh", "retry", "expire", "minimum"):
                validation.ttl(getattr(soa, timer), what=f"the SOA {timer}")
            return
        if rtype == "NS" and owner == self.zone:
            return
        validation.recordset_name(owner, self.zone)
        validation.record_type(rtype)
        validation.ttl(rdataset.ttl)
        for rdata in rdataset:
            validation.record_data(rtype, rdata.to_text(), zone=self.zone)
        types = self.types.setdefault(name, set())
        types.add(rtype)
        if "CNAME" in types and len(types) > 1:
            others = ", ".join(sorted(types - {"CNAME"}))
            raise exceptions.InvalidRecordSetLocation(
                f"{owner} has a CNAME and {others} data; a CNAME cannot share its name with "
                "any other record (RFC 1034 section 3.6.2)"
            )
        if rtype == "CNAME" and len(rdataset) > 1:
            raise exceptions.InvalidRecordSetLocation(
                f"{owner} has more than one CNAME record (RFC 1034 section 3.6.2)"
            )


def _described(exc: Exception) -> str:
    """dnspython's message without its ``<zone file>:N:`` prefix (its N is off by one)."""
    text = str(exc) or type(exc).__name__
    text = re.sub(r"^<zone file>:\d+: ", "", text).strip("'\"")
    if "non-origin SOA" in text:
        return "an SOA record belongs at the zone's origin only"
    if "subdomain of the zone origin" in text:
        return "the record lies outside the zone ($ORIGIN)"
    return text


def _parsed(zone: dns.zone.Zone, name: str) -> ParsedZone:
    soa_set = zone.get_rdataset(name, dns.rdatatype.SOA)
    if soa_set is None:
        raise exceptions.InvalidZoneFile(
            f"the zone file has no SOA record for {name}: a zone file starts with its SOA"
        )
    soa = soa_set[0]
    recordsets = []
    for owner, node in sorted(zone.items()):
        for rdataset in node:
            rtype = dns.rdatatype.to_text(rdataset.rdtype)
            owner_text = owner.to_text()
            if rtype == "SOA" or (rtype == "NS" and owner_text == name):
                continue
            records = validation.records(rtype, [r.to_text() for r in rdataset], zone=name)
            recordsets.append(
                RecordSet(
                    name=owner_text,
                    type=rtype,
                    ttl=None if rdataset.ttl == soa_set.ttl else int(rdataset.ttl),
                    records=tuple(records),
                )
            )
    return ParsedZone(
        name=name,
        email=validation.email(_rname_to_email(soa.rname)),
        ttl=int(soa_set.ttl),
        refresh=int(soa.refresh),
        retry=int(soa.retry),
        expire=int(soa.expire),
        minimum=int(soa.minimum),
        recordsets=tuple(recordsets),
    )


def _rname_to_email(rname: dns.name.Name) -> str:
    """hostmaster.example.com. -> hostmaster@example.com (the first label is the mailbox)."""
    if len(rname.labels) < 3:
        raise exceptions.InvalidZoneFile(
            f"the SOA's RNAME {rname} is not a mailbox: give e.g. hostmaster.example.com."
        )
    local = rname.labels[0].decode("ascii", errors="replace")
    domain = dns.name.Name(rname.labels[1:]).to_text(omit_final_dot=True)
    return f"{local}@{domain}"
