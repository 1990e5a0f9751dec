"""Requests to replies: the one entry point from a wire message to the wire
messages answering it (several for a zone transfer).

It parses the request and checks its TSIG (RFC 8945: unknown keys get
NOTAUTH/BADKEY, wrong secrets NOTAUTH/BADSIG, skewed clocks a signed
NOTAUTH/BADTIME), then hands it on by kind: a NOTIFY to
:mod:`zoneflow.mdns.notify`, an AXFR or IXFR to
:mod:`zoneflow.mdns.zone_transfer`, and answers a QUERY itself from a
rendered snapshot of the zone (:mod:`zoneflow.mdns.snapshot`). REFUSED for
zones it does not hold, NOTIMP for other opcodes, FORMERR for what cannot be
parsed (when at least the header can be read; else nothing). Messages with
the QR bit set are never answered, so two servers cannot bounce replies at
each other.
"""

from __future__ import annotations

import collections
import logging
import struct
import time
from collections.abc import Callable, Iterable

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.tsig

from zoneflow import exceptions, objects
from zoneflow.dns import tsig
from zoneflow.dns import zone as dns_zone
from zoneflow.mdns import access, caches, notify, options, plain_soa, replies, zone_transfer
from zoneflow.mdns import keyring as stored_keyring
from zoneflow.mdns.snapshot import catalog_zone
from zoneflow.mdns.transfers import TransferLog, from_target
from zoneflow.storage import catalogs as stored_catalogs

LOG = logging.getLogger(__name__)
CONF = options.CONF
# Plain SOA replies kept: a shape or two a target, times the zones asked about.
SOA_REPLIES = 8192
# Replies to plain NOTIFYs kept: a shape or two a target, times the zones they name.
NOTIFY_REPLIES = 8192


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
        allow_transfer = access.networks("allow_transfer")
        self.allow_notify = access.networks("allow_notify")
        self.snapshots = caches.SnapshotCache(size)
        self.pools = caches.PoolCache(caches.POOL_CACHE_SECONDS)
        self.soas = caches.SoaCache()
        # Rendered replies to plain SOA queries, without their id (see _plain_soa).
        self.soa_replies: caches.Recent[bytes] = caches.Recent(SOA_REPLIES)
        # Rendered replies to plain NOTIFYs, without their id (see _plain_notify).
        self.notify_replies: caches.Recent[bytes] = caches.Recent(NOTIFY_REPLIES)
        self.catalogs = caches.CatalogNames(caches.POOL_CACHE_SECONDS)
        # Every zone row read by name, for transfers and NOTIFYs to take again.
        self.zones = caches.ZoneRows()
        self.catalog_snapshots = caches.CatalogSnapshots()
        self.zone_transfers = zone_transfer.Transfers(
            pools=self.pools,
            soas=self.soas,
            zones=self.zones,
            catalog=self._catalog,
            allow_transfer=allow_transfer,
        )

    @property
    def transfers(self) -> collections.Counter[str]:
        """Transfers served, by kind (see :class:`zoneflow.mdns.zone_transfer.Transfers`)."""
        return self.zone_transfers.counts

    @property
    def transfer_log(self) -> TransferLog:
        """Per zone and client: what was served, for a poll that times out to read."""
        return self.zone_transfers.log

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
            plain = plain_soa.read(wire)
            if plain is not None:
                if plain.notify:
                    return [self._plain_notify(wire, plain, tcp=tcp, peer=peer, address=address)]
                reply = self._plain_soa(wire, plain, tcp=tcp, address=address)
                if reply is not None:
                    return [reply]
            return self._answer(wire, tcp=tcp, peer=peer, address=address)
        except exceptions.ServiceUnavailable as exc:
            # The database is down: one line per request, not a traceback each.
            LOG.warning("SERVFAIL to %s: %s", peer, exc)
        except Exception:
            LOG.exception("mdns failed to answer a request from %s", peer)
        return [replies.header_reply(wire, dns.rcode.SERVFAIL)]

    def _plain_soa(
        self, wire: bytes, plain: plain_soa.PlainSoa, *, tcp: bool, address: str | None
    ) -> bytes | None:
        """The reply to a plain SOA query of a zone's apex, rendered by dnspython once
        for its shape and the zone's row (:mod:`zoneflow.mdns.plain_soa`); None for
        any other name, which the full path answers."""
        if self.catalogs.holds(plain.name):
            return None
        zone = self.zones.read(plain.name)
        if zone is None:
            return None
        pool = self.pools.get(zone.pool_id)
        reply = _kept_reply(
            self.soa_replies,
            (plain.shape, tcp, zone, pool.ns_records),
            wire,
            tcp,
            lambda query: self._soa_reply(query, zone, pool),
        )
        self._note_soa_query(zone, pool, address)
        return reply

    def _plain_notify(
        self,
        wire: bytes,
        plain: plain_soa.PlainSoa,
        *,
        tcp: bool,
        peer: str,
        address: str | None,
    ) -> bytes:
        """The reply to a plain NOTIFY, as the full path makes it (:func:`notify.take`),
        rendered by dnspython once for its shape and what mdns made of it."""
        rcode = notify.take(
            plain.name,
            plain.name,
            plain.serial,
            peer=peer,
            address=address,
            allow_notify=self.allow_notify,
            zone_id_of=self.zones.id_of,
        )
        return _kept_reply(
            self.notify_replies,
            (plain.shape, tcp, rcode),
            wire,
            tcp,
            lambda query: notify.reply(query, rcode),
        )

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
                return [replies.header_reply(wire, dns.rcode.NOTIMP)]
            LOG.debug("FORMERR to %s: unparseable message (%s)", peer, exc)
            return [replies.header_reply(wire, dns.rcode.FORMERR)]
        if opcode not in (dns.opcode.QUERY, dns.opcode.NOTIFY):
            LOG.debug("NOTIMP to %s: opcode %s", peer, dns.opcode.to_text(opcode))
            return [replies.to_wire(replies.error(query, dns.rcode.NOTIMP), query, tcp)]
        if query.edns > 0:
            return [replies.to_wire(replies.error(query, dns.rcode.BADVERS), query, tcp)]
        if len(query.question) != 1:
            return [replies.to_wire(replies.error(query, dns.rcode.FORMERR), query, tcp)]
        if opcode == dns.opcode.NOTIFY:
            response = notify.answer(
                query,
                peer=peer,
                address=address,
                allow_notify=self.allow_notify,
                zone_id_of=self.zones.id_of,
            )
            return [replies.to_wire(response, query, tcp)]
        if query.question[0].rdtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
            return self.zone_transfers.answer(query, tcp=tcp, peer=peer, address=address)
        return [replies.to_wire(self._query(query, address), query, tcp)]

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
            return [replies.header_reply(wire, dns.rcode.NOTAUTH)]
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
        response = replies.error(query, dns.rcode.NOTAUTH)
        if error == dns.rcode.BADTIME:
            now = int(time.time())
            response.use_tsig(
                self.keyring[key_name],
                tsig_error=dns.rcode.BADTIME,
                other_data=struct.pack("!HI", (now >> 32) & 0xFFFF, now & 0xFFFFFFFF),
            )
            response.request_mac = query.mac or b""
            return [replies.to_wire(response, query, tcp)]
        unsigned = replies.to_wire(response, query, tcp)
        return [tsig.unsigned_error(unsigned, key_name, algorithm, error)]

    def _held_zone(self, qname: dns.name.Name) -> objects.Zone | None:
        """The zone holding ``qname``: the closest enclosing zone in storage."""
        candidate = qname
        while candidate != dns.name.root:
            zone = self.zones.read(candidate.to_text().lower())
            if zone is not None:
                return zone
            candidate = candidate.parent()
        return None

    def _catalog(self, qname: dns.name.Name) -> objects.Catalog | None:
        """The catalog zone holding ``qname``, if it is one: its pool's row, no members."""
        found = self.catalogs.pool_for(qname)
        if found is None:
            return None
        return stored_catalogs.get_catalog(found[1])

    def _query(self, query: dns.message.Message, address: str | None) -> dns.message.Message:
        question = query.question[0]
        if question.rdclass != dns.rdataclass.IN:
            return replies.error(query, dns.rcode.REFUSED)
        catalog = self._catalog(question.name)
        zone = catalog_zone(catalog) if catalog is not None else self._held_zone(question.name)
        if zone is None:
            return replies.error(query, dns.rcode.REFUSED)
        pool = self.pools.get(zone.pool_id)
        if question.name == dns_zone.zone_origin(zone) and question.rdtype == dns.rdatatype.SOA:
            if catalog is None:
                self._note_soa_query(zone, pool, address)
            return self._soa_reply(query, zone, pool)
        response = dns.message.make_response(query, our_payload=replies.UDP_PAYLOAD)
        snapshot = (
            self.catalog_snapshots.get(catalog, pool)
            if catalog is not None
            else self.snapshots.get(zone, pool)
        )
        found = snapshot.lookup(question.name, question.rdtype)
        if found.authoritative:
            response.flags |= dns.flags.AA
        response.set_rcode(found.rcode)
        response.answer.extend(found.answer)
        response.authority.extend(found.authority)
        response.additional.extend(found.additional)
        return response

    def _soa_reply(
        self, query: dns.message.Message, zone: objects.Zone, pool: objects.Pool
    ) -> dns.message.Message:
        """The question that decides propagation, answered without reading the
        recordsets (nor, for a catalog, its members)."""
        response = dns.message.make_response(query, our_payload=replies.UDP_PAYLOAD)
        response.flags |= dns.flags.AA
        response.answer.append(self.soas.get(zone, pool))
        return response

    def _note_soa_query(self, zone: objects.Zone, pool: objects.Pool, address: str | None) -> None:
        if from_target(pool, address):
            # A target checking whether it is behind: it is alive and has the zone.
            assert address is not None
            self.transfer_log.note_query(zone.id, address, "SOA", 0)


def _kept_reply(
    kept: caches.Recent[bytes],
    key: object,
    wire: bytes,
    tcp: bool,
    make: Callable[[dns.message.Message], dns.message.Message],
) -> bytes:
    """The reply to the plain request ``wire`` under its own id: the one kept in
    ``kept`` by ``key`` (all the reply depends on but the id), else made now by
    ``make`` from dnspython's parse of ``wire``, rendered and kept."""
    tail = kept.get(key)
    if tail is None:
        query = dns.message.from_wire(wire)
        tail = replies.to_wire(make(query), query, tcp)[2:]
        kept.put(key, tail)
    return wire[:2] + tail
