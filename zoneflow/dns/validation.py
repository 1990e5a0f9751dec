"""Input validation with dnspython: names, record data, TTLs, emails.

Every function returns the canonical form to store, or raises a subclass of
:class:`zoneflow.exceptions.InvalidInput` whose message names the value and
says what a valid one looks like.

These are DNS rules, like :mod:`zoneflow.dns.rules`, and import nothing of
zoneflow above ``dns/``; which of them a change goes through, and in what
order, is central's policy (:mod:`zoneflow.central.zones`, :mod:`zoneflow.central.recordsets`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from zoneflow import exceptions, objects
from zoneflow.dns import rdata

# A record as given: zone-file text, or its type's fields by name.
RecordInput = str | Mapping[str, Any]

MAX_TTL = 2**31 - 1  # RFC 2181 section 8
# SOA is written by zoneflow from the zone's fields, never by users.
SUPPORTED_TYPES = (
    "A",
    "AAAA",
    "CAA",
    "CNAME",
    "DS",
    "MX",
    "NAPTR",
    "NS",
    "PTR",
    "SPF",
    "SRV",
    "SSHFP",
    "TXT",
)
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_RECORD_LABEL = re.compile(r"^(\*|[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def zone_name(name: str) -> str:
    """A zone name as stored: lower case, absolute (trailing dot)."""
    text = name.strip().lower()
    if not text or text == ".":
        raise exceptions.InvalidZoneName(
            f"zone name {name!r} is empty: give a name like example.com."
        )
    if not text.endswith("."):
        text += "."
    labels = text[:-1].split(".")
    if len(labels) < 2:
        raise exceptions.InvalidZoneName(
            f"zone name {name!r} has a single label: zoneflow hosts zones below a top-level "
            "domain, like example.com."
        )
    for label in labels:
        if not _LABEL.match(label):
            raise exceptions.InvalidZoneName(
                f"zone name {name!r} has an invalid label {label!r}: labels are 1-63 letters, "
                "digits or hyphens, not starting or ending with a hyphen"
            )
    try:
        dns.name.from_text(text)
    except dns.exception.DNSException as exc:
        raise exceptions.InvalidZoneName(f"zone name {name!r} is invalid: {exc}") from exc
    return text


def recordset_name(name: str, zone: str) -> str:
    """The absolute name of a recordset in ``zone``.

    ``@`` means the apex, a name without a trailing dot is relative to the
    zone, an absolute name must lie inside the zone.
    """
    text = name.strip().lower()
    if text in ("", "@"):
        return zone
    if not text.endswith("."):
        text = f"{text}.{zone}"
    if text != zone and not text.endswith("." + zone):
        raise exceptions.InvalidRecordSetLocation(
            f"recordset name {name!r} is outside zone {zone}: use a name ending in .{zone} "
            "or a name relative to the zone"
        )
    labels = text[: -len(zone)].rstrip(".").split(".") if text != zone else []
    for position, label in enumerate(labels):
        if not _RECORD_LABEL.match(label):
            raise exceptions.InvalidRecordSetName(
                f"recordset name {name!r} has an invalid label {label!r}: labels are 1-63 "
                "letters, digits, hyphens or underscores, or a single '*'"
            )
        if label == "*" and position > 0:
            # RFC 4592: only a leftmost '*' is a wildcard; elsewhere it is a literal
            # label no one means (and Designate refuses it).
            raise exceptions.InvalidRecordSetName(
                f"recordset name {name!r} has '*' below its first label: a wildcard is "
                "the leftmost label only, e.g. *.www"
            )
    try:
        dns.name.from_text(text)
    except dns.exception.DNSException as exc:
        raise exceptions.InvalidRecordSetName(f"recordset name {name!r} is invalid: {exc}") from exc
    return text


def absolute_zone_name(name: str, *, what: str = "zone name") -> None:
    """Refuse a zone name (or another domain name, ``what``) without its trailing
    dot, as Designate does: a name completed silently would hide a mistake in
    what the client sent."""
    text = name.strip()
    if text and not text.endswith("."):
        raise exceptions.InvalidInput(
            f"{what} {name!r} does not end with a dot: give the absolute name, {text}."
        )


def absolute_recordset_name(name: str, zone: str) -> None:
    """Refuse a recordset name without its trailing dot (``www``, ``@``), as
    Designate's API does."""
    text = name.strip()
    if not text.endswith("."):
        example = zone if text in ("", "@") else f"{text}.{zone}"
        raise exceptions.InvalidInput(
            f"recordset name {name!r} does not end with a dot: give the absolute name, "
            f"e.g. {example}"
        )


def absolute_record_names(rtype: str, datas: Sequence[RecordInput], *, zone: str) -> None:
    """Refuse a record whose data holds a name without its trailing dot (a CNAME
    target ``www``, an MX exchange ``mail``), as Designate's API does.

    A record that does not parse is left to :func:`records`, which says why.
    """
    for index, given in enumerate(datas):
        where = f"records[{index}]"
        try:
            text = given if isinstance(given, str) else rdata.to_text(rtype, given, where=where)
            kind = dns.rdatatype.from_text(rtype.strip().upper())
            # A relative name reads differently below the root and below the zone.
            below_root, below_zone = (
                dns.rdata.from_text(
                    dns.rdataclass.IN,
                    kind,
                    text,
                    origin=dns.name.from_text(origin),
                    relativize=False,
                )
                for origin in (".", zone)
            )
        except (dns.exception.DNSException, ValueError, exceptions.InvalidInput):
            continue
        if below_root != below_zone:
            raise exceptions.InvalidRecordData(
                f"{where}: {rtype} record {text!r} holds a name without its trailing dot: "
                f"give absolute names, e.g. {below_zone.to_text()!r}"
            )


def record_type(rtype: str) -> str:
    text = rtype.strip().upper()
    if text == "SOA":
        raise exceptions.InvalidInput(
            "SOA records are written by zoneflow from the zone's email and timers: "
            "change those with 'zoneflow zone update' instead"
        )
    if text not in SUPPORTED_TYPES:
        raise exceptions.InvalidInput(
            f"record type {rtype!r} is not supported: use one of {', '.join(SUPPORTED_TYPES)}"
        )
    return text


def record_data(rtype: str, data: str, *, zone: str) -> str:
    """Parse one record's data with dnspython and return its canonical text.

    Names inside the data (MX exchange, CNAME target...) are made absolute
    relative to ``zone`` so what is stored does not depend on the origin.
    """
    try:
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN,
            dns.rdatatype.from_text(rtype),
            data,
            origin=dns.name.from_text(zone),
            relativize=False,
        )
    except (dns.exception.DNSException, ValueError) as exc:
        raise exceptions.InvalidRecordData(
            f"{rtype} record data {data!r} is invalid: {_describe(exc)}; "
            f"expected e.g. {_EXAMPLES.get(rtype, 'the presentation format of RFC 1035')}"
        ) from exc
    return str(rdata.to_text())


def records(rtype: str, datas: Sequence[RecordInput], *, zone: str) -> list[str]:
    """Validate a recordset's records: not empty, no duplicates, one CNAME at most.

    A record is text, or a mapping of its type's fields (see
    :mod:`zoneflow.dns.rdata`); either way it is stored as canonical text.
    """
    if not datas:
        raise exceptions.InvalidInput(
            f"records: {objects.with_article(rtype)} recordset needs at least one record"
        )
    canonical: list[str] = []
    for index, given in enumerate(datas):
        # Each error names the record by its place in the list, as the API's fields are.
        where = f"records[{index}]"
        data = given
        if not isinstance(data, str):
            data = rdata.to_text(rtype, data, where=where)
        try:
            text = record_data(rtype, data, zone=zone)
        except exceptions.InvalidRecordData as exc:
            raise exceptions.InvalidRecordData(f"{where}: {exc.message}") from exc
        if text in canonical:
            raise exceptions.InvalidInput(
                f"{where}: record {data!r} is given twice: give each one once"
            )
        canonical.append(text)
    if rtype == "CNAME" and len(canonical) > 1:
        raise exceptions.InvalidRecordSetLocation(
            "a CNAME recordset holds exactly one record (RFC 1034 section 3.6.2)"
        )
    return canonical


def ttl(value: int | str | None, *, what: str = "TTL") -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise exceptions.InvalidTTL(
            f"{what} {value!r} is not a whole number of seconds (0 to {MAX_TTL})"
        ) from None
    if not 0 <= number <= MAX_TTL:
        raise exceptions.InvalidTTL(f"{what} {number} is out of range: use 0 to {MAX_TTL} seconds")
    return number


def email(value: str) -> str:
    text = value.strip()
    if not _EMAIL.match(text):
        raise exceptions.InvalidEmail(
            f"email {value!r} is invalid: give an address like hostmaster@example.com"
        )
    return text


def email_to_rname(value: str) -> str:
    """hostmaster@example.com -> hostmaster.example.com. (dots in the local part escaped)."""
    local, domain = value.split("@", 1)
    return local.replace(".", "\\.") + "." + domain.rstrip(".") + "."


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.rstrip(".")


_EXAMPLES = {
    "A": "'192.0.2.1'",
    "AAAA": "'2001:db8::1'",
    "CNAME": "'www.example.com.'",
    "MX": "'10 mail.example.com.'",
    "TXT": "'\"v=spf1 -all\"' (quoted strings)",
    "SRV": "'10 5 5060 sip.example.com.'",
    "NS": "'ns1.example.net.'",
    "PTR": "'host.example.com.'",
    "CAA": "'0 issue \"letsencrypt.org\"'",
    "SSHFP": "'1 1 123456789abcdef67890123456789abcdef67890'",
}
