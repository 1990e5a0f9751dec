"""TSIG (RFC 8945): the keys zoneflow knows, and signing of raw transfer messages.

Keys come from configuration, one ``[tsig] key = NAME:ALGORITHM:SECRET`` line
per key (the secret in base64, as ``tsig-keygen`` and ``keymgr`` print
it). A pool target names the key its server uses with the ``tsig_key_name``
option; mdns then requires that key for the pool's zone transfers.

The option is marked secret, so oslo.config masks it when it logs its
options; nothing here puts a secret in an exception or a log line either.
"""

from __future__ import annotations

import base64
import binascii
import struct
import time
from collections.abc import Iterable, Iterator

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.tsig

from zoneflow import exceptions
from zoneflow.dns import options

CONF = options.CONF


ALGORITHMS = {
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-md5": dns.tsig.HMAC_MD5,
}
# RFC 8945 section 10: 300 seconds of clock skew are allowed by default.
FUDGE = 300

Keyring = dict[dns.name.Name, dns.tsig.Key]


def parse_keys(entries: Iterable[str]) -> Keyring:
    """A keyring from ``NAME:ALGORITHM:SECRET`` entries; InvalidConfig names a bad one.

    An error names the key (or the entry's position) and never echoes the
    secret.
    """
    keyring: Keyring = {}
    for position, entry in enumerate(entries, start=1):
        parts = entry.strip().split(":")
        if len(parts) != 3 or not all(parts):
            raise exceptions.InvalidConfig(
                f"[tsig] key entry {position} is not NAME:ALGORITHM:SECRET "
                "(three fields separated by colons)"
            )
        name_text, algorithm_text, secret_text = parts
        try:
            name = dns.name.from_text(name_text)
        except dns.exception.DNSException as exc:
            raise exceptions.InvalidConfig(
                f"[tsig] key entry {position}: {name_text!r} is not a valid key name ({exc})"
            ) from exc
        algorithm = ALGORITHMS.get(algorithm_text.lower())
        if algorithm is None:
            raise exceptions.InvalidConfig(
                f"[tsig] key {name_text}: unknown algorithm {algorithm_text!r}; "
                f"use one of {', '.join(ALGORITHMS)}"
            )
        try:
            secret = base64.b64decode(secret_text, validate=True)
        except (binascii.Error, ValueError):
            raise exceptions.InvalidConfig(
                f"[tsig] key {name_text}: the secret is not valid base64 "
                "(generate one with 'tsig-keygen -a hmac-sha256 NAME')"
            ) from None
        if not secret:
            raise exceptions.InvalidConfig(f"[tsig] key {name_text}: the secret is empty")
        if name in keyring:
            raise exceptions.InvalidConfig(f"[tsig] key {name_text} is defined twice")
        keyring[name] = dns.tsig.Key(name, secret, algorithm)
    return keyring


def configured_keyring() -> Keyring:
    """The keyring ``[tsig] key`` describes."""
    return parse_keys(CONF.tsig.key)


def key_name(text: str) -> dns.name.Name:
    """A key name as a target option gives it, in the form keyrings use."""
    return dns.name.from_text(text)


def _rr(owner: dns.name.Name, rdata: dns.rdtypes.ANY.TSIG.TSIG) -> bytes:
    wire, name = rdata.to_wire(), owner.to_wire()
    assert wire is not None and name is not None  # to_wire() without a file returns bytes
    fixed = struct.pack("!HHIH", dns.rdatatype.TSIG, dns.rdataclass.ANY, 0, len(wire))
    return name + fixed + wire


def _append(message: bytes, record: bytes) -> bytes:
    (additional,) = struct.unpack("!H", message[10:12])
    return message[:10] + struct.pack("!H", additional + 1) + message[12:] + record


def _blank(algorithm: dns.name.Name, original_id: int, error: int) -> dns.rdtypes.ANY.TSIG.TSIG:
    """A TSIG record with no MAC yet, signed now with the standard fudge."""
    return dns.rdtypes.ANY.TSIG.TSIG(
        dns.rdataclass.ANY,
        dns.rdatatype.TSIG,
        algorithm,
        int(time.time()),
        FUDGE,
        b"",
        original_id,
        error,
        b"",
    )


def sign_stream(
    messages: Iterable[bytes], key: dns.tsig.Key, request_mac: bytes
) -> Iterator[bytes]:
    """Sign each message of a multi-message reply (RFC 8945 section 5.3.1).

    The first message's MAC covers the request's MAC; each later one covers
    the MAC before it, so a client notices a message dropped, reordered or
    altered anywhere in the transfer.
    """
    context = None
    for message in messages:
        (original_id,) = struct.unpack("!H", message[:2])
        template = _blank(key.algorithm, original_id, dns.rcode.NOERROR)
        rdata, context = dns.tsig.sign(
            message,
            key,
            template,
            int(time.time()),
            request_mac if context is None else None,
            context,
            True,
        )
        yield _append(message, _rr(key.name, rdata))


def unsigned_error(
    message: bytes, key_name: dns.name.Name, algorithm: dns.name.Name, error: int
) -> bytes:
    """``message`` (an error reply) with an unsigned TSIG carrying ``error``.

    RFC 8945 section 5.3.2: a reply to a request whose key is unknown
    (BADKEY) or whose MAC is wrong (BADSIG) cannot be signed, so it carries
    the TSIG error with an empty MAC.
    """
    (original_id,) = struct.unpack("!H", message[:2])
    return _append(message, _rr(key_name, _blank(algorithm, original_id, error)))
