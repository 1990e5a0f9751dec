"""Record data as named fields: ``{"priority": 10, "exchange": "mail.example.com."}``.

The API takes a record either as zone-file text (``10 mail.example.com.``,
Designate's way) or as an object of the fields its type defines, and can
show each record both ways. :func:`to_text` turns an object into the text
the rest of zoneflow validates and stores (each field checked first, so an
error names the field); :func:`to_fields` reads stored text back into
fields with dnspython.

Field names are the RFCs' (Designate's where it has them: MX ``priority``,
``cname``, ``nsdname``, ``ptrdname``). Numbers are JSON numbers, binary
data (SSHFP fingerprints, DS digests) hexadecimal text, TXT data a list of
character-strings (``strings``) or one ``text`` that is cut into strings
of 255 bytes.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from zoneflow import exceptions

# The longest character-string (RFC 1035 section 3.3).
MAX_STRING = 255


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    kind: str  # "u8", "u16", "name", "ipv4", "ipv6", "hex", "string", "tag"
    # Where dnspython's rdata keeps it, when the name differs.
    attribute: str | None = None


_U8, _U16 = "u8", "u16"
FIELDS: dict[str, tuple[Field, ...]] = {
    "A": (Field("address", "ipv4"),),
    "AAAA": (Field("address", "ipv6"),),
    "CNAME": (Field("cname", "name", "target"),),
    "NS": (Field("nsdname", "name", "target"),),
    "PTR": (Field("ptrdname", "name", "target"),),
    "MX": (Field("priority", _U16, "preference"), Field("exchange", "name")),
    "SRV": (
        Field("priority", _U16),
        Field("weight", _U16),
        Field("port", _U16),
        Field("target", "name"),
    ),
    "SSHFP": (Field("algorithm", _U8), Field("fp_type", _U8), Field("fingerprint", "hex")),
    "CAA": (Field("flags", _U8), Field("tag", "tag"), Field("value", "string")),
    "NAPTR": (
        Field("order", _U16),
        Field("preference", _U16),
        Field("flags", "string"),
        Field("services", "string", "service"),
        Field("regexp", "string"),
        Field("replacement", "name"),
    ),
    "DS": (
        Field("key_tag", _U16),
        Field("algorithm", _U8),
        Field("digest_type", _U8),
        Field("digest", "hex"),
    ),
}
# Shown, never given: zoneflow writes a zone's SOA (see zoneflow.dns.zone).
_SHOWN_ONLY: dict[str, tuple[Field, ...]] = {
    "SOA": (
        Field("mname", "name"),
        Field("rname", "name"),
        *(Field(timer, "u32") for timer in ("serial", "refresh", "retry", "expire", "minimum")),
    ),
}
# TXT and SPF: "strings" (a list) or "text" (one string, cut into strings).
_TEXT_TYPES = ("TXT", "SPF")


def describe() -> str:
    """Each type's fields, one line each, for the API's documentation."""
    lines = [f"{rtype}: {', '.join(f.name for f in fields)}" for rtype, fields in FIELDS.items()]
    texts = "strings (a list) or text (cut into 255-byte strings)"
    lines += [f"{rtype}: {texts}" for rtype in _TEXT_TYPES]
    return "; ".join(lines)


def to_text(rtype: str, fields: Mapping[str, Any], *, where: str = "record") -> str:
    """The zone-file text of a record given as fields; ``where`` names it in errors
    (e.g. ``records[1]``)."""
    if rtype in _TEXT_TYPES:
        return _text_record(fields, where)
    spec = FIELDS.get(rtype)
    if spec is None:
        raise exceptions.InvalidRecordData(
            f"{where}: {rtype} records cannot be given as fields: give the record as text"
        )
    _exact_keys(fields, [f.name for f in spec], where, rtype)
    return " ".join(_FORMAT[f.kind](fields[f.name], f"{where}.{f.name}") for f in spec)


def to_fields(rtype: str, text: str) -> dict[str, Any]:
    """The fields of a record stored as (canonical, absolute) text."""
    rdata: Any = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rtype), text)
    if rtype in _TEXT_TYPES:
        return {"strings": [_decode(s) for s in rdata.strings]}
    shown: dict[str, Any] = {}
    for field in FIELDS.get(rtype) or _SHOWN_ONLY[rtype]:
        value = getattr(rdata, field.attribute or field.name)
        if isinstance(value, bytes):
            value = value.hex() if field.kind == "hex" else _decode(value)
        elif isinstance(value, dns.name.Name):
            value = value.to_text()
        shown[field.name] = value
    return shown


# --- one field each -------------------------------------------------------------


def _unsigned(bits: int) -> Callable[[Any, str], str]:
    top = 2**bits - 1

    def check(value: Any, where: str) -> str:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _bad(where, value, f"a whole number from 0 to {top}")
        if not 0 <= value <= top:
            raise exceptions.InvalidRecordData(f"{where}: {value} is out of range: give 0 to {top}")
        return str(value)

    return check


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
        raise _bad(where, value, "a domain name such as host.example.com. (or @)")
    try:
        dns.name.from_text(value)
    except dns.exception.DNSException as exc:
        raise exceptions.InvalidRecordData(
            f"{where}: {value!r} is not a domain name: {exc}"
        ) from exc
    return value


def _address(version: int) -> Callable[[Any, str], str]:
    example = "192.0.2.1" if version == 4 else "2001:db8::1"

    def check(value: Any, where: str) -> str:
        try:
            address = ipaddress.ip_address(value) if isinstance(value, str) else None
        except ValueError:
            address = None
        if address is None or address.version != version:
            raise _bad(where, value, f"an IPv{version} address such as {example}")
        return str(address)

    return check


def _hex(value: Any, where: str) -> str:
    try:
        if not isinstance(value, str) or not value:
            raise ValueError
        bytes.fromhex(value)
    except ValueError:
        raise _bad(where, value, "hexadecimal digits, e.g. 2f3a...") from None
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _bad(where, value, "a string")
    if len(value.encode()) > MAX_STRING:
        raise exceptions.InvalidRecordData(
            f"{where}: is {len(value.encode())} bytes long: a string holds {MAX_STRING} at most"
        )
    return _quote(value)


def _tag(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.isascii() or not value.isalnum():
        raise _bad(where, value, "letters and digits, e.g. issue, issuewild, iodef")
    return value


_FORMAT: dict[str, Callable[[Any, str], str]] = {
    _U8: _unsigned(8),
    _U16: _unsigned(16),
    "name": _name,
    "ipv4": _address(4),
    "ipv6": _address(6),
    "hex": _hex,
    "string": _string,
    "tag": _tag,
}


def _text_record(fields: Mapping[str, Any], where: str) -> str:
    keys = set(fields)
    if keys not in ({"strings"}, {"text"}):
        unknown = sorted(keys - {"strings", "text"})
        if unknown:
            raise exceptions.InvalidRecordData(
                f"{where}.{unknown[0]}: is not a field of this record type: give strings "
                "(a list of strings) or text (one string)"
            )
        raise exceptions.InvalidRecordData(
            f"{where}: give either strings (a list of strings) or text (one string), one of them"
        )
    if "text" in fields:
        text = fields["text"]
        if not isinstance(text, str):
            raise _bad(f"{where}.text", text, "a string")
        return " ".join(_quote(part) for part in _cut(text)) or '""'
    strings = fields["strings"]
    if not isinstance(strings, list) or not strings:
        raise _bad(f"{where}.strings", strings, "a list of one or more strings")
    return " ".join(_string(s, f"{where}.strings[{i}]") for i, s in enumerate(strings))


def _cut(text: str) -> list[str]:
    """``text`` in pieces of at most 255 bytes, never splitting a character."""
    pieces: list[str] = []
    current = ""
    for char in text:
        if len((current + char).encode()) > MAX_STRING:
            pieces.append(current)
            current = ""
        current += char
    return [*pieces, current] if current or not pieces else pieces


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _decode(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


def _exact_keys(fields: Mapping[str, Any], names: list[str], where: str, rtype: str) -> None:
    for key in fields:
        if key not in names:
            raise exceptions.InvalidRecordData(
                f"{where}.{key}: is not a field of {rtype} records: they have {', '.join(names)}"
            )
    for name in names:
        if name not in fields:
            raise exceptions.InvalidRecordData(
                f"{where}.{name}: is missing: {rtype} records have {', '.join(names)}"
            )


def _bad(where: str, value: Any, expected: str) -> exceptions.InvalidRecordData:
    return exceptions.InvalidRecordData(f"{where}: {value!r} is invalid: give {expected}")
