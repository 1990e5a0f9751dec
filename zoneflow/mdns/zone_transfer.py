"""Answers to AXFR and IXFR requests, from storage.

- AXFR over TCP: the whole zone, SOA first and last, packed into messages of
  at most ``[mdns] xfr_message_size`` bytes (see :mod:`zoneflow.mdns.xfr`).
  AXFR over UDP: FORMERR, as BIND answers it (RFC 5936 defines AXFR over
  TCP only).
- IXFR (RFC 1995): a single SOA when the client's serial is current (or when
  asked over UDP); else the differences from the zone's change history, or,
  when the history does not reach back to the client's serial, the whole
  zone in AXFR form. A catalog zone's IXFR: the members that left and joined
  since the client's serial, from the catalog's own history
  (:func:`zoneflow.storage.catalogs.catalog_changes_since`), or the whole
  catalog.
- Signed requests get every message signed, each chained to the one before.
- Every target of a pool transfers each change, the same records: those of
  a small transfer are kept (:class:`zoneflow.mdns.caches.TransferCache`)
  and the other targets get them without a read. A zone's records at a
  serial never change, so a kept transfer is never stale.

Each transfer served is counted by kind and noted in the transfer log
(:mod:`zoneflow.mdns.transfers`).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from zoneflow import objects
from zoneflow.dns import tsig
from zoneflow.dns import zone as dns_zone
from zoneflow.mdns import access, caches, options, replies, snapshot, transfers, xfr
from zoneflow.storage import catalogs as stored_catalogs
from zoneflow.storage import history as stored_history
from zoneflow.storage import transfers as stored_transfers

LOG = logging.getLogger(__name__)
CONF = options.CONF

# (zone, client) pairs the transfer log holds between its writes.
MAX_LOGGED_PAIRS = 10_000
# Room kept in each transfer message for its TSIG record when signed: owner
# and algorithm names, fixed fields and a MAC of up to 64 bytes.
_TSIG_ROOM = 400


def _serial_gte(a: int, b: int) -> bool:
    """``a`` is ``b`` or newer in RFC 1982 serial number arithmetic."""
    return a == b or 0 < (a - b) % 2**32 < 2**31


def _lower(name: dns.name.Name) -> str:
    """``name`` as storage spells zone names: absolute, lower-case text."""
    return name.to_text().lower()


def _change_records(records: Iterable[objects.Record]) -> Iterator[xfr.WireRecord]:
    for owner, ttl, type_text, data in records:
        rtype = dns.rdatatype.from_text(type_text)
        yield owner, rtype, ttl, xfr.rdata_wire(rtype, data)


def _ixfr_records(
    zone: objects.Zone, pool: objects.Pool, changes: list[objects.ZoneChange]
) -> Iterator[xfr.WireRecord]:
    """An IXFR's records (RFC 1995 section 4): the newest SOA; per change, the old SOA
    and what it removed, the new SOA and what it added; the newest SOA again."""

    def soa(serial: int) -> Iterator[xfr.WireRecord]:
        return xfr.rrset_records(dns_zone.soa_rrset(dataclasses.replace(zone, serial=serial), pool))

    newest = changes[-1].serial
    yield from soa(newest)
    for change in changes:
        yield from soa(change.previous_serial)
        yield from _change_records(change.removed)
        yield from soa(change.serial)
        yield from _change_records(change.added)
    yield from soa(newest)


class Transfers:
    """Turns an AXFR or IXFR request into its reply messages.

    Synchronous and thread-safe, as :class:`zoneflow.mdns.responder.Responder`
    that holds it.
    """

    def __init__(
        self,
        *,
        pools: caches.PoolCache,
        soas: caches.SoaCache,
        zones: caches.ZoneRows,
        catalog: Callable[[dns.name.Name], objects.Catalog | None],
        allow_transfer: tuple[access.Network, ...],
    ) -> None:
        self.pools = pools
        # The SOA a secondary asked for just before it transfers the zone.
        self.soas = soas
        # The zone row its SOA query read, taken again (see ZoneRows).
        self.zones = zones
        self.catalog = catalog
        self.allow_transfer = allow_transfer
        # Transfers served, by kind: AXFR, IXFR, IXFR-AXFR (history too
        # short, the whole zone sent), IXFR-current (the single SOA).
        self.counts: collections.Counter[str] = collections.Counter()
        self._counter_lock = threading.Lock()
        # Per zone and client: what was served, for a poll that times out to read.
        self.log = transfers.TransferLog(max_keys=MAX_LOGGED_PAIRS)
        # The records of recent small transfers: each of a pool's targets asks the same.
        self.kept = caches.TransferCache()

    def answer(
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
            return [replies.to_wire(replies.error(query, dns.rcode.FORMERR), query, tcp)]
        zone, catalog = None, None
        if question.rdclass == dns.rdataclass.IN:
            catalog = self.catalog(question.name)
            if catalog is not None and dns.name.from_text(catalog.name) != question.name:
                catalog = None  # a name inside a catalog is not a zone
            if catalog is not None:
                zone = snapshot.catalog_zone(catalog)
            elif question.rdtype == dns.rdatatype.IXFR and tcp:
                zone = self.zones.recent(_lower(question.name), caches.TRANSFER_ROW_SECONDS)
            else:  # whoever asks for the whole zone, or the serial, expects it as it is now
                zone = self.zones.read(_lower(question.name))
        if zone is None:
            return self._refused(query, tcp, peer, "not a zone mdns holds")
        pool = self.pools.get(zone.pool_id)
        refusal = access.transfer_refusal(query, pool, address, self.allow_transfer)
        if refusal is not None:
            LOG.warning("REFUSED %s of %s to %s: %s", kind, question.name, peer, refusal)
            return [replies.to_wire(replies.error(query, dns.rcode.REFUSED), query, tcp)]
        if catalog is not None and question.rdtype == dns.rdatatype.AXFR:
            return self._catalog_axfr(query, catalog, pool, peer, kind="AXFR")
        if question.rdtype == dns.rdatatype.AXFR:
            return self._axfr(query, zone, pool, peer, address, kind="AXFR")
        client_serial = replies.soa_serial(query.authority)
        if client_serial is None:
            # RFC 1995 section 3: an IXFR query carries the client's SOA.
            return [replies.to_wire(replies.error(query, dns.rcode.FORMERR), query, tcp)]
        if catalog is None and address is not None and transfers.from_target(pool, address):
            # The client's SOA is the serial it serves: the propagation model's news.
            self.log.note_query(zone.id, address, "IXFR-QUERY", client_serial)
        if tcp and catalog is None and _serial_gte(client_serial, zone.serial):
            # Current as the kept row says: whether it is, the row as it is now says.
            now = self._now(zone)
            if now is None:
                return self._refused(query, tcp, peer, "deleted just now")
            zone, pool = now
        if not tcp or _serial_gte(client_serial, zone.serial):
            # Current, or asked over UDP: the single SOA (RFC 1995 section 2)
            # tells the client to come back over TCP when it is behind.
            self._count("IXFR-current")
            response = dns.message.make_response(query, our_payload=replies.UDP_PAYLOAD)
            response.flags |= dns.flags.AA
            response.answer.append(self.soas.get(zone, pool))
            return [replies.to_wire(response, query, tcp)]
        if catalog is not None:
            return self._catalog_ixfr(query, catalog, pool, peer, client_serial)
        key = ("IXFR", client_serial, *caches.soa_key(zone, pool))
        kept = self.kept.get(key)
        if kept is not None:
            return self._ixfr(query, zone, peer, address, client_serial, kept, kept.records)
        changes = stored_history.zone_changes_since(zone.id, client_serial)
        if not changes:
            # The history does not reach back that far: the whole zone, in
            # AXFR form, which RFC 1995 section 4 allows, as it is now.
            now = self._now(zone)
            if now is None:
                return self._refused(query, tcp, peer, "deleted just now")
            return self._axfr(query, *now, peer, address, kind="IXFR-AXFR")
        told = caches.KeptTransfer((), changes[-1].serial, len(changes))
        records = self.kept.keep(key, _ixfr_records(zone, pool, changes), told)
        return self._ixfr(query, zone, peer, address, client_serial, told, records)

    def _now(self, zone: objects.Zone) -> tuple[objects.Zone, objects.Pool] | None:
        """``zone`` and its pool as stored now (None: deleted since its row was kept)."""
        now = self.zones.read(zone.name)
        return None if now is None else (now, self.pools.get(now.pool_id))

    @staticmethod
    def _refused(query: dns.message.Message, tcp: bool, peer: str, why: str) -> list[bytes]:
        question = query.question[0]
        kind = dns.rdatatype.to_text(question.rdtype)
        LOG.info("REFUSED %s of %s to %s: %s", kind, question.name, peer, why)
        return [replies.to_wire(replies.error(query, dns.rcode.REFUSED), query, tcp)]

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
        kept = self.kept.get(("AXFR", *caches.soa_key(zone, pool)))
        with contextlib.ExitStack() as reading:
            if kept is not None:
                current, records = zone, iter(kept.records)
            else:
                current, rows = reading.enter_context(stored_transfers.zone_for_transfer(zone.id))
                soa = list(xfr.rrset_records(self.soas.get(current, pool)))
                records = self.kept.keep(
                    ("AXFR", *caches.soa_key(current, pool)),
                    itertools.chain(
                        soa,
                        xfr.rrset_records(dns_zone.apex_ns_rrset(current, pool)),
                        xfr.stored_records(rows, current.ttl),
                        soa,
                    ),
                    caches.KeptTransfer((), current.serial),
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
        self,
        query: dns.message.Message,
        catalog: objects.Catalog,
        pool: objects.Pool,
        peer: str,
        *,
        kind: str,
    ) -> Iterator[bytes]:
        """The whole catalog, streamed as a zone's AXFR is: its members read a batch
        at a time in one snapshot and packed straight into wire format (10,000
        members in a fraction of a second; through dnspython's objects, seconds)."""
        started = time.monotonic()
        count = members = 0
        with stored_catalogs.catalog_for_transfer(catalog.pool_id) as (current, rows):
            if current is None:
                # The pool lost its catalog since the request was read.
                yield replies.to_wire(replies.error(query, dns.rcode.REFUSED), query, True)
                return
            name = current.name
            origin = dns.name.from_text(name)
            soa = dns_zone.soa_rrset(snapshot.catalog_zone(current), pool)

            def member_ptrs() -> Iterator[tuple[str, str]]:
                nonlocal members
                for zone_id, member in rows:
                    members += 1
                    yield snapshot.member_owner(name, zone_id), member

            records = itertools.chain(
                xfr.rrset_records(soa),
                *(xfr.rrset_records(rrset) for rrset in snapshot.catalog_apex(origin)),
                xfr.ptr_records(member_ptrs(), 0),
                xfr.rrset_records(soa),
            )
            for count, message in enumerate(  # noqa: B007 - the count is logged below
                self._messages(query, origin, records), start=1
            ):
                yield message
        self._count(kind)
        LOG.info(
            "%s of catalog %s serial %d to %s: %d members in %d messages, %.0f ms",
            kind,
            current.name,
            current.serial,
            peer,
            members,
            count,
            (time.monotonic() - started) * 1000,
        )

    def _catalog_ixfr(
        self,
        query: dns.message.Message,
        catalog: objects.Catalog,
        pool: objects.Pool,
        peer: str,
        client_serial: int,
    ) -> Iterator[bytes]:
        """The members that left and joined since the consumer's serial, as one
        difference (RFC 1995 section 4: its old SOA and the PTRs removed, the new SOA
        and the PTRs added); the whole catalog when the history does not reach back."""
        difference = stored_catalogs.catalog_changes_since(catalog.pool_id, client_serial)
        if difference is None:
            yield from self._catalog_axfr(query, catalog, pool, peer, kind="IXFR-AXFR")
            return
        started = time.monotonic()
        current = difference.catalog
        name = current.name

        def soa(serial: int) -> Iterator[xfr.WireRecord]:
            zone = snapshot.catalog_zone(dataclasses.replace(current, serial=serial))
            return xfr.rrset_records(dns_zone.soa_rrset(zone, pool))

        def ptrs(members: list[tuple[str, str]]) -> Iterator[xfr.WireRecord]:
            owners = ((snapshot.member_owner(name, zone_id), zone) for zone_id, zone in members)
            return xfr.ptr_records(owners, 0)

        newest = list(soa(current.serial))  # it opens, parts and closes the difference
        records = itertools.chain(
            newest,
            soa(client_serial),
            ptrs(difference.left),
            newest,
            ptrs(difference.joined),
            newest,
        )
        count = 0
        for count, message in enumerate(  # noqa: B007 - the count is logged below
            self._messages(query, dns.name.from_text(name), records), start=1
        ):
            yield message
        self._count("IXFR")
        LOG.info(
            "IXFR of catalog %s from serial %d to %d to %s: %d members left, %d joined, "
            "%d messages, %.0f ms",
            name,
            client_serial,
            current.serial,
            peer,
            len(difference.left),
            len(difference.joined),
            count,
            (time.monotonic() - started) * 1000,
        )

    def _ixfr(
        self,
        query: dns.message.Message,
        zone: objects.Zone,
        peer: str,
        address: str | None,
        client_serial: int,
        told: caches.KeptTransfer,
        records: Iterable[xfr.WireRecord],
    ) -> Iterator[bytes]:
        """``records`` (the IXFR's, kept or being read) as messages; ``told`` says
        what they bring the client to, for the transfer log and the log line."""
        started = time.monotonic()
        count = 0
        origin = dns_zone.zone_origin(zone)
        with self._noted(zone.id, address, told.serial, "IXFR"):
            for count, message in enumerate(  # noqa: B007 - the count is logged below
                self._messages(query, origin, records), start=1
            ):
                yield message
        self._count("IXFR")
        LOG.info(
            "IXFR of %s from serial %d to %d to %s: %d changes in %d messages, %.0f ms",
            zone.name,
            client_serial,
            told.serial,
            peer,
            told.changes,
            count,
            (time.monotonic() - started) * 1000,
        )

    def _count(self, kind: str) -> None:
        with self._counter_lock:
            self.counts[kind] += 1

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
                self.log.note(zone_id, address, serial, kind, completed=completed)
