"""mdns: the authoritative mini-DNS that nameservers transfer zones from.

It answers from storage, so a change is served the moment its transaction
commits. What it answers, and why:

- QUERY for a zone it holds: authoritative answers (SOA straight from the
  zone row; other names from a rendered snapshot of the zone, with CNAME,
  wildcard, delegation and negative answers as RFC 1034 and 2308 describe).
- AXFR over TCP: the whole zone, SOA first and last, packed into messages of
  at most ``[mdns] xfr_message_size`` bytes. AXFR over UDP: FORMERR, as BIND
  answers it: RFC 5936 defines AXFR over TCP only, and a FORMERR tells a
  client at once that the request itself was wrong, where a TC bit would
  invite it to retry the same thing.
- IXFR (RFC 1995): a single SOA when the client's serial is current (or when
  asked over UDP, which tells the client to come back over TCP); else the
  differences from the zone's change history, or, when the history does not
  reach back to the client's serial, the whole zone in AXFR form, which RFC
  1995 section 4 allows.
- TSIG (RFC 8945): signed requests are verified and answered signed, every
  message of a transfer chained to the one before. A pool whose targets name
  a ``tsig_key_name`` requires that key for its transfers: unsigned or other
  keys get REFUSED, unknown keys NOTAUTH/BADKEY, wrong secrets NOTAUTH/BADSIG,
  skewed clocks a signed NOTAUTH/BADTIME; never any zone data.
- Access lists: transfers and NOTIFYs only from ``[mdns] allow_transfer`` and
  ``allow_notify`` networks (loopback by default); others get REFUSED.
- NOTIFY: acknowledged (NOERROR, AA) and recorded per zone and source, as a
  nameserver's word on the serial it serves; NOTAUTH for zones it does not
  hold. Each (source, zone) is held to ``[mdns] notify_rate``: past it the
  newest NOTIFY waits for its turn (:mod:`zoneflow.mdns.notify_limit`), so
  a flood does no database work and never crowds out queries.
- Catalog zones (RFC 9432): each pool's catalog, when it has one, listing the
  pool's zones as members.
- REFUSED for zones it does not hold, NOTIMP for other opcodes, FORMERR for
  what cannot be parsed (when at least the header can be read; else nothing).
  Messages with the QR bit set are never answered, so two servers cannot
  bounce replies at each other.

See doc/mdns.md for the whole picture.

Storage is synchronous, so each request is answered on a small thread pool of
its own and never blocks the event loop, nor takes threads from the process
embedding mdns (all-in-one).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import datetime
import functools
import ipaddress
import itertools
import logging
import signal
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.renderer
import dns.rrset
import dns.tsig

from zoneflow import exceptions, heartbeat, objects
from zoneflow.dns import tsig
from zoneflow.dns import zone as dns_zone
from zoneflow.mdns import keyring as stored_keyring
from zoneflow.mdns import notify_limit, options, transfers, xfr
from zoneflow.storage import api as storage

LOG = logging.getLogger(__name__)
CONF = options.CONF
T = TypeVar("T")


# The EDNS UDP payload recommended since DNS Flag Day 2020: replies that never
# fragment. Larger answers are truncated and the client retries over TCP.
UDP_PAYLOAD = 1232
# Datagrams being answered at once; past it new ones are dropped (the client
# retries), so a flood cannot queue unbounded work behind the thread pool.
MAX_PENDING_UDP = 1000
# NOTIFYs being answered at once, apart from the queries above: however many
# sources and zones a flood names, NOTIFYs never take the queries' places.
MAX_PENDING_NOTIFY = 64
# (source, zone) pairs whose NOTIFY rate is tracked; NOTIFYs from pairs past
# it are dropped until some fall idle (a flood of spoofed sources).
MAX_NOTIFY_PAIRS = 10_000
# Transfer messages made per trip to the thread pool: few enough that a slow
# client holds little in mdns's buffers, many enough that the trips are cheap.
SEND_BATCH = 8
# Pools are read for every answer (the SOA's MNAME, the apex NS) and change
# only when an operator loads pools.yaml; reading one costs more than the rest
# of an SOA answer, so it is kept this many seconds.
POOL_CACHE_SECONDS = 5.0
# How often the transfers served are written to storage (zone_transfers):
# a nameserver transferring a zone in a loop costs one write a second at most.
TRANSFER_LOG_SECONDS = 1.0
_OPT_SIZE = 11  # an OPT record without options
# Room kept in each transfer message for its TSIG record when signed: owner
# and algorithm names, fixed fields and a MAC of up to 64 bytes.
_TSIG_ROOM = 400
_OPCODE_AND_RD = 0x7800 | dns.flags.RD


def _serial_gte(a: int, b: int) -> bool:
    """``a`` is ``b`` or newer in RFC 1982 serial number arithmetic."""
    return a == b or 0 < (a - b) % 2**32 < 2**31


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(option: str) -> tuple[Network, ...]:
    networks = []
    for entry in getattr(CONF.mdns, option):
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise exceptions.InvalidConfig(
                f"[mdns] {option}: {entry!r} is not a network; write addresses or CIDR "
                "prefixes such as 192.0.2.53 or 10.0.0.0/8"
            ) from None
    return tuple(networks)


def _allowed(address: str | None, networks: tuple[Network, ...]) -> bool:
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def _pool_keys(pool: objects.Pool) -> frozenset[dns.name.Name]:
    """The TSIG keys a pool's targets transfer with (their ``tsig_key_name``)."""
    return frozenset(
        tsig.key_name(str(target.options["tsig_key_name"]))
        for target in pool.targets
        if target.options.get("tsig_key_name")
    )


def _notify_key(wire: bytes, addr: object) -> notify_limit.Key | None:
    """The (source address, zone) of a NOTIFY, read off its wire; None for others.

    Read without parsing the message, so that a NOTIFY past its rate costs
    the event loop next to nothing. Malformed ones (None) go on to be
    answered FORMERR like any message.
    """
    if len(wire) < 12 or dns.opcode.from_flags(struct.unpack("!H", wire[2:4])[0]) != (
        dns.opcode.NOTIFY
    ):
        return None
    address = _address(addr)
    if address is None or struct.unpack("!H", wire[4:6])[0] != 1:
        return None
    try:
        name, _ = dns.name.from_wire(wire, 12)
    except dns.exception.DNSException:
        return None
    return address, name


def _header_reply(wire: bytes, rcode: dns.rcode.Rcode) -> bytes:
    """A bare reply echoing the id and opcode of a message we could not parse."""
    query_id, flags = struct.unpack("!HH", wire[:4])
    flags = dns.flags.QR | (flags & _OPCODE_AND_RD) | int(rcode)
    return struct.pack("!HHHHHH", query_id, flags, 0, 0, 0, 0)


# --- a zone, rendered -------------------------------------------------------------


@dataclasses.dataclass
class _Lookup:
    rcode: dns.rcode.Rcode = dns.rcode.NOERROR
    authoritative: bool = True
    answer: list[dns.rrset.RRset] = dataclasses.field(default_factory=list)
    authority: list[dns.rrset.RRset] = dataclasses.field(default_factory=list)
    additional: list[dns.rrset.RRset] = dataclasses.field(default_factory=list)


class ZoneSnapshot:
    """One serial of one zone as DNS data, indexed for lookups and ready for AXFR."""

    def __init__(self, zone: objects.Zone, pool: objects.Pool, rrsets: list[dns.rrset.RRset]):
        self.zone = zone
        self.origin = dns_zone.zone_origin(zone)
        self.soa = dns_zone.soa_rrset(zone, pool)
        self.rrsets = rrsets
        self.nodes: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = {}
        # Every owner name and every name between it and the apex: a name in
        # here exists (RFC 4592's empty non-terminals included) and gets
        # NODATA, never NXDOMAIN.
        self.names: set[dns.name.Name] = {self.origin}
        for rrset in rrsets:
            self.nodes.setdefault(rrset.name, {})[rrset.rdtype] = rrset
            name = rrset.name
            while name != self.origin and name not in self.names:
                self.names.add(name)
                name = name.parent()

    @classmethod
    def read(
        cls, zone: objects.Zone, pool: objects.Pool, *, attempts: int = 3
    ) -> tuple[ZoneSnapshot, bool]:
        """Read a zone's recordsets; return the snapshot and whether it is exact.

        The zone row and its recordsets are separate reads, and a change may
        commit in between. Every change bumps the serial in its own
        transaction, so an unchanged serial after the recordsets were read
        proves they belong to it. When changes keep landing, the snapshot
        carries the serial read before its data: the data is then at least
        as new as the serial says, and the next NOTIFY brings the rest.
        """
        current = zone
        for attempt in range(attempts):
            recordsets = storage.list_recordsets(current.id)
            again = storage.find_zone_for_mdns(current.name)
            exact = again is not None and again.serial == current.serial
            if exact or again is None or again.id != current.id or attempt == attempts - 1:
                break
            current = again
        rrsets = list(dns_zone.iter_rrsets(current, pool, recordsets))
        return cls(current, pool, rrsets), exact

    def negative_soa(self) -> dns.rrset.RRset:
        # RFC 2308 section 3: the SOA of a negative answer lives min(TTL, MINIMUM).
        soa = self.soa[0]
        assert isinstance(soa, dns.rdtypes.ANY.SOA.SOA)
        return dns.rrset.from_rdata(self.origin, min(self.soa.ttl, soa.minimum), soa)

    def lookup(self, qname: dns.name.Name, qtype: dns.rdatatype.RdataType) -> _Lookup:
        referral = self._delegation(qname, qtype)
        if referral is not None:
            return referral
        node = self.nodes.get(qname)
        if node is None and qname not in self.names:
            node = self._wildcard(qname)
            if node is None:
                return _Lookup(rcode=dns.rcode.NXDOMAIN, authority=[self.negative_soa()])
            node = {
                rdtype: dns.rrset.from_rdata_list(qname, rrset.ttl, list(rrset))
                for rdtype, rrset in node.items()
            }
        node = node or {}
        if qtype == dns.rdatatype.ANY and node:
            return _Lookup(answer=list(node.values()))
        if qtype in node:
            return _Lookup(answer=[node[qtype]])
        if dns.rdatatype.CNAME in node:
            return _Lookup(answer=[node[dns.rdatatype.CNAME]])
        return _Lookup(authority=[self.negative_soa()])

    def _delegation(self, qname: dns.name.Name, qtype: dns.rdatatype.RdataType) -> _Lookup | None:
        """A referral when ``qname`` is at or below an NS set below the apex."""
        for depth in range(len(self.origin) + 1, len(qname) + 1):
            cut = qname.split(depth)[1]
            ns = self.nodes.get(cut, {}).get(dns.rdatatype.NS)
            if ns is None:
                continue
            if cut == qname and qtype == dns.rdatatype.DS:
                # The DS of a child lives on the parent's side of the cut.
                return None
            glue = [
                rrset
                for target in ns
                for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
                if (rrset := self.nodes.get(target.target, {}).get(rdtype)) is not None
            ]
            return _Lookup(authoritative=False, authority=[ns], additional=glue)
        return None

    def _wildcard(self, qname: dns.name.Name) -> dict[int, dns.rrset.RRset] | None:
        """The ``*`` node at the closest encloser of ``qname`` (RFC 4592), if any."""
        encloser = qname.parent()
        while encloser not in self.names:
            encloser = encloser.parent()
        return self.nodes.get(dns.name.Name((b"*", *encloser.labels)))


class _SnapshotCache:
    """The last few exact snapshots, by zone, serial and apex NS.

    The serial changes with every change to a zone's data; the apex NS come
    from the pool, whose changes bump no serial, so they are part of the key.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: collections.OrderedDict[object, ZoneSnapshot] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, zone: objects.Zone, pool: objects.Pool) -> ZoneSnapshot:
        key = (zone.id, zone.serial, pool.ns_records)
        with self._lock:
            snapshot = self._entries.get(key)
            if snapshot is not None:
                self._entries.move_to_end(key)
                return snapshot
        snapshot, exact = ZoneSnapshot.read(zone, pool)
        if exact and self.size:
            with self._lock:
                self._entries[(snapshot.zone.id, snapshot.zone.serial, pool.ns_records)] = snapshot
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return snapshot


class _SoaCache:
    """SOA RRsets by zone row and apex NS: building one costs more than the rest
    of an SOA answer, and a zone's row changes only with its serial."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._entries: collections.OrderedDict[object, dns.rrset.RRset] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, zone: objects.Zone, pool: objects.Pool) -> dns.rrset.RRset:
        key = (zone, pool.ns_records)
        with self._lock:
            rrset = self._entries.get(key)
            if rrset is not None:
                self._entries.move_to_end(key)
                return rrset
        rrset = dns_zone.soa_rrset(zone, pool)
        with self._lock:
            self._entries[key] = rrset
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return rrset


class _PoolCache:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._entries: dict[str, tuple[float, objects.Pool]] = {}
        self._lock = threading.Lock()

    def get(self, pool_id: str) -> objects.Pool:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(pool_id)
        if entry is not None and now - entry[0] < self.seconds:
            return entry[1]
        pool = storage.get_pool(pool_id)
        with self._lock:
            self._entries[pool_id] = (now, pool)
        return pool


class _CatalogNames:
    """Catalog zone name -> pool id, re-read every few seconds (like pools)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._read_at = -seconds
        self._names: dict[dns.name.Name, str] = {}
        self._lock = threading.Lock()

    def pool_for(self, qname: dns.name.Name) -> tuple[dns.name.Name, str] | None:
        """The catalog holding ``qname`` and its pool's id, if any."""
        now = time.monotonic()
        with self._lock:
            stale = now - self._read_at >= self.seconds
        if stale:
            names = {dns.name.from_text(n): p for n, p in storage.list_catalogs().items()}
            with self._lock:
                self._names, self._read_at = names, now
        names = self._names
        if not names:
            return None
        candidate = qname
        while True:
            pool_id = names.get(candidate)
            if pool_id is not None:
                return candidate, pool_id
            if candidate == dns.name.root:
                return None
            candidate = candidate.parent()


def catalog_snapshot(catalog: objects.Catalog, pool: objects.Pool) -> ZoneSnapshot:
    """A pool's catalog zone (RFC 9432, version 2) as DNS data.

    Each member is a PTR at ``<id>.zones.<catalog>``, its id the zone's
    (stable for the zone's life, so a consumer never sees a member change
    identity); the apex NS is ``invalid.`` as the RFC asks.
    """
    origin = dns.name.from_text(catalog.name)
    zone = objects.Zone(
        id=f"catalog-{catalog.pool_id}",
        name=catalog.name,
        email=f"hostmaster@{catalog.name.rstrip('.')}",
        ttl=0,
        serial=catalog.serial,
        refresh=catalog.refresh,
        retry=catalog.refresh,
        expire=2419200,
        minimum=0,
        status=objects.ACTIVE,
        action=objects.NONE,
        pool_id=catalog.pool_id,
        project_id=None,
        description=None,
        error=None,
        created_at=datetime.datetime.min,
        updated_at=None,
    )
    rrsets = [
        dns.rrset.from_text(origin, 0, "IN", "NS", "invalid."),
        dns.rrset.from_text(dns.name.from_text("version", origin), 0, "IN", "TXT", '"2"'),
    ]
    zones = dns.name.from_text("zones", origin)
    for zone_id, name in catalog.members:
        owner = dns.name.from_text(zone_id.replace("-", ""), zones)
        rrsets.append(dns.rrset.from_text(owner, 0, "IN", "PTR", name))
    return ZoneSnapshot(zone, pool, rrsets)


# --- requests to replies ----------------------------------------------------------


class Responder:
    """Turns one request into its reply messages (several for a zone transfer).

    Synchronous and thread-safe: the server calls it from its thread pool.
    """

    def __init__(
        self,
        *,
        cache_size: int | None = None,
        keyring: tsig.Keyring | stored_keyring.Keyring | None = None,
    ) -> None:
        size = CONF.mdns.snapshot_cache_size if cache_size is None else cache_size
        # By default the [tsig] key lines and the keys stored through /v2/tsigkeys.
        self.keyring = stored_keyring.Keyring() if keyring is None else keyring
        self.allow_transfer = _networks("allow_transfer")
        self.allow_notify = _networks("allow_notify")
        self.snapshots = _SnapshotCache(size)
        self.pools = _PoolCache(POOL_CACHE_SECONDS)
        self.soas = _SoaCache()
        self.catalogs = _CatalogNames(POOL_CACHE_SECONDS)
        # Transfers served, by kind: AXFR, IXFR, IXFR-AXFR (history too
        # short, the whole zone sent), IXFR-current (the single SOA).
        self.transfers: collections.Counter[str] = collections.Counter()
        self._counter_lock = threading.Lock()
        # Per zone and client: what was served, for a poll that times out to read.
        self.transfer_log = transfers.TransferLog(max_keys=MAX_NOTIFY_PAIRS)

    def answer(
        self, wire: bytes, *, tcp: bool, peer: str = "?", address: str | None = None
    ) -> Iterable[bytes]:
        """The wire replies to ``wire`` from ``address``; none means "send nothing".

        ``peer`` names the client in logs; ``address`` (its IP) is checked
        against the access lists: without it, transfers and NOTIFYs are refused.

        A zone transfer's replies are a lazy stream that reads the database
        as it goes: iterate it once, in order, or close it."""
        if len(wire) < 12:
            LOG.debug("dropped %d-byte message from %s: shorter than a DNS header", len(wire), peer)
            return []
        if struct.unpack("!H", wire[2:4])[0] & dns.flags.QR:
            LOG.debug("dropped a response from %s: mdns only answers queries", peer)
            return []
        try:
            return self._answer(wire, tcp=tcp, peer=peer, address=address)
        except exceptions.ServiceUnavailable as exc:
            # The database is down: one line per request, not a traceback each.
            LOG.warning("SERVFAIL to %s: %s", peer, exc)
        except Exception:
            LOG.exception("mdns failed to answer a request from %s", peer)
        return [_header_reply(wire, dns.rcode.SERVFAIL)]

    def _answer(self, wire: bytes, *, tcp: bool, peer: str, address: str | None) -> Iterable[bytes]:
        opcode = dns.opcode.from_flags(struct.unpack("!H", wire[2:4])[0])
        try:
            query = dns.message.from_wire(wire, keyring=self.keyring)
        except (dns.message.UnknownTSIGKey, dns.tsig.BadKey, dns.tsig.BadAlgorithm):
            return self._tsig_failure(wire, dns.rcode.BADKEY, tcp=tcp, peer=peer)
        except dns.tsig.BadSignature:
            return self._tsig_failure(wire, dns.rcode.BADSIG, tcp=tcp, peer=peer)
        except dns.tsig.BadTime:
            return self._tsig_failure(wire, dns.rcode.BADTIME, tcp=tcp, peer=peer)
        except Exception as exc:  # dnspython raises many kinds of error on garbage
            if opcode not in (dns.opcode.QUERY, dns.opcode.NOTIFY):
                return [_header_reply(wire, dns.rcode.NOTIMP)]
            LOG.debug("FORMERR to %s: unparseable message (%s)", peer, exc)
            return [_header_reply(wire, dns.rcode.FORMERR)]
        if opcode not in (dns.opcode.QUERY, dns.opcode.NOTIFY):
            LOG.debug("NOTIMP to %s: opcode %s", peer, dns.opcode.to_text(opcode))
            return [self._udp_or_tcp(_error(query, dns.rcode.NOTIMP), query, tcp)]
        if query.edns > 0:
            return [self._udp_or_tcp(_error(query, dns.rcode.BADVERS), query, tcp)]
        if len(query.question) != 1:
            return [self._udp_or_tcp(_error(query, dns.rcode.FORMERR), query, tcp)]
        if opcode == dns.opcode.NOTIFY:
            return [self._udp_or_tcp(self._notify(query, peer, address), query, tcp)]
        if query.question[0].rdtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
            return self._transfer(query, tcp=tcp, peer=peer, address=address)
        return [self._udp_or_tcp(self._query(query), query, tcp)]

    def _tsig_failure(
        self, wire: bytes, error: dns.rcode.Rcode, *, tcp: bool, peer: str
    ) -> list[bytes]:
        """NOTAUTH with the TSIG error (RFC 8945 section 5.2), and no data.

        BADKEY and BADSIG replies cannot be signed (the key is unknown, or
        the client's secret is not ours), so their TSIG has an empty MAC; a
        BADTIME reply is signed and carries mdns's clock.
        """
        try:
            query = dns.message.from_wire(wire, keyring=False)
        except Exception:
            return [_header_reply(wire, dns.rcode.NOTAUTH)]
        key_name, algorithm = query.keyname, query.keyalgorithm
        assert key_name is not None and algorithm is not None  # it failed its TSIG check
        # By name: rcode 16 is both BADSIG and BADVERS, and to_text() says BADVERS.
        name, why = {
            dns.rcode.BADKEY: (
                "BADKEY",
                "mdns has no such key with that algorithm ([tsig] key, /v2/tsigkeys)",
            ),
            dns.rcode.BADSIG: (
                "BADSIG",
                "the MAC does not verify: the key's secret differs from the one in mdns's "
                "[tsig] key lines",
            ),
            dns.rcode.BADTIME: (
                "BADTIME",
                "its time is off by more than the fudge: check both clocks",
            ),
        }[error]
        LOG.warning(
            "NOTAUTH (TSIG %s) to %s for a request signed with key %s: %s",
            name,
            peer,
            key_name,
            why,
        )
        response = _error(query, dns.rcode.NOTAUTH)
        if error == dns.rcode.BADTIME:
            now = int(time.time())
            response.use_tsig(
                self.keyring[key_name],
                tsig_error=dns.rcode.BADTIME,
                other_data=struct.pack("!HI", (now >> 32) & 0xFFFF, now & 0xFFFFFFFF),
            )
            response.request_mac = query.mac or b""
            return [self._udp_or_tcp(response, query, tcp)]
        unsigned = self._udp_or_tcp(response, query, tcp)
        return [tsig.unsigned_error(unsigned, key_name, algorithm, error)]

    @staticmethod
    def _udp_or_tcp(response: dns.message.Message, query: dns.message.Message, tcp: bool) -> bytes:
        if tcp:
            limit = 65535
        else:
            limit = max(512, min(query.payload, UDP_PAYLOAD)) if query.edns >= 0 else 512
        # Past the limit, truncate and set TC: over UDP the client retries over
        # TCP; over TCP (an RRset of thousands of records) it at least gets
        # what fits rather than a SERVFAIL.
        return bytes(response.to_wire(max_size=limit, prefer_truncation=True))

    # -- NOTIFY and QUERY ------------------------------------------------------------

    def _notify(
        self, query: dns.message.Message, peer: str, address: str | None
    ) -> dns.message.Message:
        """Record a nameserver's NOTIFY (RFC 1996): it says which serial it now serves."""
        question = query.question[0]
        serial = _soa_serial(query.answer)
        if not _allowed(address, self.allow_notify):
            LOG.warning(
                "REFUSED NOTIFY for %s from %s: not in [mdns] allow_notify", question.name, peer
            )
            return _error(query, dns.rcode.REFUSED)
        zone = None
        if question.rdclass == dns.rdataclass.IN:
            zone = storage.find_zone_for_mdns(question.name.to_text().lower())
        if zone is None:
            LOG.info("NOTAUTH to NOTIFY for %s from %s: not a zone mdns holds", question.name, peer)
            return _error(query, dns.rcode.NOTAUTH)
        assert address is not None  # _allowed() said so
        storage.record_notify(zone.id, address, serial)
        LOG.info("NOTIFY for %s (serial %s) from %s", question.name, serial, peer)
        response = dns.message.make_response(query, our_payload=UDP_PAYLOAD)
        response.flags |= dns.flags.AA
        return response

    def _held_zone(self, qname: dns.name.Name) -> objects.Zone | None:
        """The zone holding ``qname``: the closest enclosing zone in storage."""
        candidate = qname
        while candidate != dns.name.root:
            zone = storage.find_zone_for_mdns(candidate.to_text().lower())
            if zone is not None:
                return zone
            candidate = candidate.parent()
        return None

    def _catalog(self, qname: dns.name.Name) -> ZoneSnapshot | None:
        """The catalog zone holding ``qname``, rendered, if it is one."""
        found = self.catalogs.pool_for(qname)
        if found is None:
            return None
        pool = self.pools.get(found[1])
        catalog = storage.get_catalog(pool.id)
        return None if catalog is None else catalog_snapshot(catalog, pool)

    def _query(self, query: dns.message.Message) -> dns.message.Message:
        question = query.question[0]
        if question.rdclass != dns.rdataclass.IN:
            return _error(query, dns.rcode.REFUSED)
        catalog = self._catalog(question.name)
        zone = catalog.zone if catalog is not None else self._held_zone(question.name)
        if zone is None:
            return _error(query, dns.rcode.REFUSED)
        pool = self.pools.get(zone.pool_id)
        response = dns.message.make_response(query, our_payload=UDP_PAYLOAD)
        if question.name == dns_zone.zone_origin(zone) and question.rdtype == dns.rdatatype.SOA:
            # The question that decides propagation, answered without reading
            # the recordsets.
            response.flags |= dns.flags.AA
            response.answer.append(self.soas.get(zone, pool))
            return response
        snapshot = catalog if catalog is not None else self.snapshots.get(zone, pool)
        found = snapshot.lookup(question.name, question.rdtype)
        if found.authoritative:
            response.flags |= dns.flags.AA
        response.set_rcode(found.rcode)
        response.answer.extend(found.answer)
        response.authority.extend(found.authority)
        response.additional.extend(found.additional)
        return response

    # -- AXFR and IXFR ---------------------------------------------------------------

    def _transfer(
        self, query: dns.message.Message, *, tcp: bool, peer: str, address: str | None
    ) -> Iterable[bytes]:
        """The replies to an AXFR or IXFR: a list when short, else a lazy stream.

        The stream reads the database as it is sent, so it must be consumed
        (or closed) by one caller, in order.
        """
        question = query.question[0]
        kind = dns.rdatatype.to_text(question.rdtype)
        if question.rdtype == dns.rdatatype.AXFR and not tcp:
            LOG.info("FORMERR to %s: AXFR of %s over UDP", peer, question.name)
            return [self._udp_or_tcp(_error(query, dns.rcode.FORMERR), query, tcp)]
        zone, catalog = None, None
        if question.rdclass == dns.rdataclass.IN:
            catalog = self._catalog(question.name)
            if catalog is not None and catalog.origin != question.name:
                catalog = None  # a name inside a catalog is not a zone
            zone = (
                catalog.zone
                if catalog is not None
                else storage.find_zone_for_mdns(question.name.to_text().lower())
            )
        if zone is None:
            LOG.info("REFUSED %s of %s to %s: not a zone mdns holds", kind, question.name, peer)
            return [self._udp_or_tcp(_error(query, dns.rcode.REFUSED), query, tcp)]
        pool = self.pools.get(zone.pool_id)
        refusal = self._transfer_refusal(query, pool, address)
        if refusal is not None:
            LOG.warning("REFUSED %s of %s to %s: %s", kind, question.name, peer, refusal)
            return [self._udp_or_tcp(_error(query, dns.rcode.REFUSED), query, tcp)]
        if catalog is not None and question.rdtype == dns.rdatatype.AXFR:
            return self._catalog_axfr(query, catalog, peer, kind="AXFR")
        if question.rdtype == dns.rdatatype.AXFR:
            return self._axfr(query, zone, pool, peer, address, kind="AXFR")
        client_serial = _soa_serial(query.authority)
        if client_serial is None:
            # RFC 1995 section 3: an IXFR query carries the client's SOA.
            return [self._udp_or_tcp(_error(query, dns.rcode.FORMERR), query, tcp)]
        if not tcp or _serial_gte(client_serial, zone.serial):
            # Current, or asked over UDP: the single SOA (RFC 1995 section 2)
            # tells the client to come back over TCP when it is behind.
            self._count("IXFR-current")
            response = dns.message.make_response(query, our_payload=UDP_PAYLOAD)
            response.flags |= dns.flags.AA
            response.answer.append(dns_zone.soa_rrset(zone, pool))
            return [self._udp_or_tcp(response, query, tcp)]
        if catalog is not None:
            # A catalog keeps no history: the whole catalog, in AXFR form.
            return self._catalog_axfr(query, catalog, peer, kind="IXFR-AXFR")
        changes = storage.zone_changes_since(zone.id, client_serial)
        if not changes:
            # The history does not reach back that far: the whole zone, in
            # AXFR form, which RFC 1995 section 4 allows.
            return self._axfr(query, zone, pool, peer, address, kind="IXFR-AXFR")
        return self._ixfr(query, zone, pool, peer, address, changes)

    def _transfer_refusal(
        self, query: dns.message.Message, pool: objects.Pool, address: str | None
    ) -> str | None:
        """Why this client may not transfer the pool's zones, or None when it may."""
        if not _allowed(address, self.allow_transfer):
            return f"{address} is not in [mdns] allow_transfer"
        keys = _pool_keys(pool)
        if not keys and not CONF.mdns.require_tsig:
            return None
        wanted = ", ".join(sorted(k.to_text() for k in keys)) or "any key ([mdns] require_tsig)"
        if not query.had_tsig:
            return f"the request is unsigned and the pool's transfers require TSIG: {wanted}"
        if keys and query.keyname not in keys:
            return f"signed with key {query.keyname} but the pool's targets use {wanted}"
        return None

    def _messages(
        self, query: dns.message.Message, origin: dns.name.Name, records: Iterable[xfr.WireRecord]
    ) -> Iterator[bytes]:
        """A transfer's messages, each TSIG-signed when the request was."""
        size = CONF.mdns.xfr_message_size
        if not (query.had_tsig and query.keyring):
            return xfr.messages(query, origin, records, size)
        assert query.mac is not None
        unsigned = xfr.messages(query, origin, records, size - _TSIG_ROOM)
        return tsig.sign_stream(unsigned, query.keyring, query.mac)

    def _axfr(
        self,
        query: dns.message.Message,
        zone: objects.Zone,
        pool: objects.Pool,
        peer: str,
        address: str | None,
        *,
        kind: str,
    ) -> Iterator[bytes]:
        started = time.monotonic()
        count = 0
        with storage.zone_for_transfer(zone.id) as (current, rows):
            soa = dns_zone.soa_rrset(current, pool)
            records = itertools.chain(
                *(xfr.rrset_records(rrset) for rrset in dns_zone.apex_rrsets(current, pool)),
                xfr.stored_records(rows, current.ttl),
                xfr.rrset_records(soa),
            )
            origin = dns_zone.zone_origin(current)
            with self._noted(zone.id, address, current.serial, kind):
                for count, message in enumerate(  # noqa: B007 - the count is logged below
                    self._messages(query, origin, records), start=1
                ):
                    yield message
        self._count(kind)
        LOG.info(
            "%s of %s serial %d to %s: %d messages, %.0f ms",
            kind,
            current.name,
            current.serial,
            peer,
            count,
            (time.monotonic() - started) * 1000,
        )

    def _catalog_axfr(
        self, query: dns.message.Message, catalog: ZoneSnapshot, peer: str, *, kind: str
    ) -> list[bytes]:
        records = itertools.chain(
            xfr.rrset_records(catalog.soa),
            *(xfr.rrset_records(rrset) for rrset in catalog.rrsets),
            xfr.rrset_records(catalog.soa),
        )
        messages = list(self._messages(query, catalog.origin, records))
        self._count(kind)
        LOG.info(
            "%s of catalog %s serial %d to %s: %d members",
            kind,
            catalog.zone.name,
            catalog.zone.serial,
            peer,
            len(catalog.rrsets) - 2,
        )
        return messages

    def _ixfr(
        self,
        query: dns.message.Message,
        zone: objects.Zone,
        pool: objects.Pool,
        peer: str,
        address: str | None,
        changes: list[objects.ZoneChange],
    ) -> Iterator[bytes]:
        started = time.monotonic()
        newest = dataclasses.replace(zone, serial=changes[-1].serial)

        def soa(serial: int) -> dns.rrset.RRset:
            return dns_zone.soa_rrset(dataclasses.replace(zone, serial=serial), pool)

        def sequence() -> Iterator[xfr.WireRecord]:
            # RFC 1995 section 4: newest SOA; per change, the old SOA and what
            # it removed, the new SOA and what it added; newest SOA again.
            yield from xfr.rrset_records(soa(newest.serial))
            for change in changes:
                yield from xfr.rrset_records(soa(change.previous_serial))
                yield from _change_records(change.removed)
                yield from xfr.rrset_records(soa(change.serial))
                yield from _change_records(change.added)
            yield from xfr.rrset_records(soa(newest.serial))

        count = 0
        origin = dns_zone.zone_origin(zone)
        with self._noted(zone.id, address, newest.serial, "IXFR"):
            for count, message in enumerate(  # noqa: B007 - the count is logged below
                self._messages(query, origin, sequence()), start=1
            ):
                yield message
        self._count("IXFR")
        LOG.info(
            "IXFR of %s from serial %d to %d to %s: %d changes in %d messages, %.0f ms",
            zone.name,
            changes[0].previous_serial,
            newest.serial,
            peer,
            len(changes),
            count,
            (time.monotonic() - started) * 1000,
        )

    def _count(self, kind: str) -> None:
        with self._counter_lock:
            self.transfers[kind] += 1

    @contextlib.contextmanager
    def _noted(self, zone_id: str, address: str | None, serial: int, kind: str) -> Iterator[None]:
        """Note in the transfer log the transfer made inside: whole, or ended early
        (the client went away and the server closed the stream, or it failed)."""
        completed = False
        try:
            yield
            completed = True
        finally:
            if address is not None:
                self.transfer_log.note(zone_id, address, serial, kind, completed=completed)


def _error(query: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
    response = dns.message.make_response(query, our_payload=UDP_PAYLOAD)
    response.set_rcode(rcode)
    return response


def _soa_serial(section: list[dns.rrset.RRset]) -> int | None:
    """The serial of the first SOA in a message section (a NOTIFY's or an IXFR query's)."""
    for rrset in section:
        for rdata in rrset:
            if isinstance(rdata, dns.rdtypes.ANY.SOA.SOA):
                return int(rdata.serial)
    return None


def _change_records(records: Iterable[objects.Record]) -> Iterator[xfr.WireRecord]:
    for owner, ttl, type_text, data in records:
        rtype = dns.rdatatype.from_text(type_text)
        yield owner, rtype, ttl, xfr.rdata_wire(rtype, data)


# --- the network side -------------------------------------------------------------


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: MdnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server._spawn_udp(self, data, addr)

    def error_received(self, exc: Exception) -> None:
        # An ICMP error about an earlier reply: the client has gone away.
        LOG.debug("mdns UDP error: %s", exc)


def _take(replies: Iterator[bytes], count: int) -> list[bytes]:
    return list(itertools.islice(replies, count))


def _address(addr: object) -> str | None:
    if isinstance(addr, tuple) and addr:
        return str(addr[0])
    return None


def _peer(addr: object) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return str(addr)


_Datagram = tuple[_UdpProtocol, bytes, tuple[str, int]]


class MdnsServer:
    """mdns on one address and port, UDP and TCP, answering from storage."""

    def __init__(self, host: str | None = None, port: int | None = None) -> None:
        self.host: str = host or CONF.mdns.host
        self.port: int = CONF.mdns.port if port is None else port
        self.responder = Responder()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._udp_tasks: set[asyncio.Task[None]] = set()
        self._notify_tasks: set[asyncio.Task[None]] = set()
        self.notifies: notify_limit.NotifyLimiter[_Datagram] = notify_limit.NotifyLimiter(
            rate=CONF.mdns.notify_rate, burst=CONF.mdns.notify_burst, max_keys=MAX_NOTIFY_PAIRS
        )
        self._busy_logged = 0.0
        self._notify_busy_logged = 0.0
        self._tcp_tasks: set[asyncio.Task[None]] = set()
        self._log_writer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        """Listen on UDP and TCP; with port 0, ``self.port`` becomes the port picked."""
        loop = asyncio.get_running_loop()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=CONF.mdns.threads, thread_name_prefix="mdns"
        )
        # Port 0 gives a TCP port that may be taken for UDP: then try another.
        for attempt in range(20):
            tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port)
            port = int(tcp.sockets[0].getsockname()[1])
            try:
                udp, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self), local_addr=(self.host, port)
                )
            except OSError:
                tcp.close()
                await tcp.wait_closed()
                if self.port != 0 or attempt == 19:
                    raise
                continue
            break
        self._tcp, self._udp, self.port = tcp, udp, port
        self._log_writer = asyncio.ensure_future(self._write_transfer_log())
        LOG.info("mdns listening on %s:%s (UDP and TCP)", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and end open connections and requests in progress."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
        tasks = [*self._udp_tasks, *self._notify_tasks, *self._tcp_tasks]
        for task in tasks:
            task.cancel()
        # Awaited, not just cancelled: a task left pending when the loop
        # closes would be destroyed half-way. (And from Python 3.12 on, the
        # server's wait_closed() waits for its connections to end.)
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()
            self._tcp = None
        if self._log_writer is not None:
            self._log_writer.cancel()
            await asyncio.gather(self._log_writer, return_exceptions=True)
            self._log_writer = None
            # What the last second served, so a poll reading it is not left short.
            with contextlib.suppress(Exception):
                await self._in_pool(self.responder.transfer_log.flush)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def _write_transfer_log(self) -> None:
        """Write the transfers served to storage once a second, when there are any."""
        log = self.responder.transfer_log
        while True:
            await asyncio.sleep(TRANSFER_LOG_SECONDS)
            if log.pending():
                await self._in_pool(log.flush)

    async def _in_pool(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _answer_fully(self, wire: bytes, *, tcp: bool, addr: object) -> list[bytes]:
        return list(self.responder.answer(wire, tcp=tcp, peer=_peer(addr), address=_address(addr)))

    def _spawn_udp(self, protocol: _UdpProtocol, data: bytes, addr: tuple[str, int]) -> None:
        key = _notify_key(data, addr)
        if key is not None:
            self._notify_udp(key, (protocol, data, addr))
            return
        if len(self._udp_tasks) >= MAX_PENDING_UDP:
            now = time.monotonic()
            if now - self._busy_logged >= 1.0:  # once a second, not once a datagram
                self._busy_logged = now
                LOG.warning(
                    "mdns is busy: %d queries in progress, dropping new ones", MAX_PENDING_UDP
                )
            return
        self._start_udp(self._udp_tasks, (protocol, data, addr))

    def _start_udp(self, tasks: set[asyncio.Task[None]], datagram: _Datagram) -> None:
        task = asyncio.ensure_future(self._answer_udp(*datagram))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def _notify_udp(self, key: notify_limit.Key, datagram: _Datagram) -> None:
        """Answer a NOTIFY now if its (source, zone) is within its rate, else later.

        One past the rate is held (replacing any held before it) and
        answered when the rate allows: a flood costs one answer per turn,
        and the newest serial announced is the one recorded.
        """
        now = time.monotonic()
        busy = len(self._notify_tasks) >= MAX_PENDING_NOTIFY
        if not busy and self.notifies.admit(key, now):
            self._start_udp(self._notify_tasks, datagram)
            return
        if busy:
            self._log_notify_busy(now)
        delay = self.notifies.hold(key, datagram, now)
        if delay is not None:
            asyncio.get_running_loop().call_later(delay, self._release_notify, key)

    def _release_notify(self, key: notify_limit.Key) -> None:
        if self._udp is None:
            return  # stopped meanwhile
        now = time.monotonic()
        if len(self._notify_tasks) >= MAX_PENDING_NOTIFY:
            # Still busy: keep it held, and try again in a turn.
            self._log_notify_busy(now)
            asyncio.get_running_loop().call_later(1 / self.notifies.rate, self._release_notify, key)
            return
        datagram = self.notifies.release(key, now)
        if datagram is not None:
            self._start_udp(self._notify_tasks, datagram)

    def _log_notify_busy(self, now: float) -> None:
        if now - self._notify_busy_logged >= 1.0:  # once a second, not once a datagram
            self._notify_busy_logged = now
            LOG.warning(
                "mdns is busy: %d NOTIFYs in progress, holding new ones", MAX_PENDING_NOTIFY
            )

    async def _answer_udp(self, protocol: _UdpProtocol, data: bytes, addr: tuple[str, int]) -> None:
        try:
            call = functools.partial(self._answer_fully, data, tcp=False, addr=addr)
            replies = await self._in_pool(call)
            if protocol.transport is not None and not protocol.transport.is_closing():
                for reply in replies:
                    protocol.transport.sendto(reply, addr)
        except (asyncio.CancelledError, RuntimeError):
            # Stopping: the loop or the thread pool is going away.
            pass
        except Exception:
            LOG.exception("mdns failed to answer %s over UDP", _peer(addr))

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer one TCP client: many queries in turn, each reply in full before the next.

        Every read and every write waits at most ``tcp_timeout``, so an idle,
        slow or stuck client loses its connection and holds nothing else up.
        """
        addr = writer.get_extra_info("peername")
        peer, address = _peer(addr), _address(addr)
        timeout = CONF.mdns.tcp_timeout
        task = asyncio.current_task()
        if task is not None:
            self._tcp_tasks.add(task)
        try:
            while True:
                try:
                    header = await asyncio.wait_for(reader.readexactly(2), timeout)
                except asyncio.IncompleteReadError:
                    return  # the client closed the connection between queries
                (length,) = struct.unpack("!H", header)
                wire = await asyncio.wait_for(reader.readexactly(length), timeout)
                key = _notify_key(wire, addr)
                if key is not None:
                    # A client that waits for each answer is slowed to the rate.
                    wait = self.notifies.reserve(key, time.monotonic(), longest=timeout)
                    if wait is None:
                        LOG.warning(
                            "closed TCP client %s: NOTIFYs far past [mdns] notify_rate", peer
                        )
                        return
                    await asyncio.sleep(wait)
                call = functools.partial(
                    self.responder.answer, wire, tcp=True, peer=peer, address=address
                )
                await self._send(iter(await self._in_pool(call)), writer, timeout)
        except TimeoutError:
            LOG.debug("closed idle or slow TCP client %s", peer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            LOG.debug("TCP client %s went away", peer)
        except Exception:
            LOG.exception("mdns failed serving TCP client %s", peer)
        finally:
            if task is not None:
                self._tcp_tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _send(
        self, replies: Iterator[bytes], writer: asyncio.StreamWriter, timeout: float
    ) -> None:
        """Write replies as the pool makes them, waiting for the client to take each batch.

        A transfer's stream reads the database on the pool's threads, a batch
        of messages at a time; waiting for the socket to drain between
        batches keeps a slow client from making mdns buffer the zone.
        """
        try:
            while True:
                batch = await self._in_pool(functools.partial(_take, replies, SEND_BATCH))
                for reply in batch:
                    writer.write(struct.pack("!H", len(reply)) + reply)
                await asyncio.wait_for(writer.drain(), timeout)
                if len(batch) < SEND_BATCH:
                    return
        finally:
            close = getattr(replies, "close", None)
            if close is not None:
                # Ends the stream's database transaction, on a pool thread.
                await self._in_pool(close)

    # -- embedding in a synchronous process ------------------------------------------

    def start_in_thread(self) -> None:
        """Serve from a daemon thread with its own event loop; return once listening."""
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # handed to the starting thread
                failure.append(exc)
                loop.close()
                return
            finally:
                ready.set()
            try:
                loop.run_forever()
                loop.run_until_complete(self.stop())
            finally:
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=serve, name="mdns", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._loop = self._thread = None
            raise failure[0]

    def stop_thread(self, timeout: float = 10.0) -> None:
        """Stop what :meth:`start_in_thread` started and wait for its thread."""
        if self._loop is None or self._thread is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop has already ended
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._loop = self._thread = None


def run(host: str | None = None, port: int | None = None) -> None:
    """``zoneflow mdns``: serve until SIGINT or SIGTERM."""

    async def main() -> None:
        server = MdnsServer(host, port)
        await server.start()
        beat = heartbeat.for_mdns(server)
        beat.start()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        try:
            await stopping.wait()
        finally:
            beat.stop()
            await server.stop()
            LOG.info("mdns stopped")

    asyncio.run(main())
