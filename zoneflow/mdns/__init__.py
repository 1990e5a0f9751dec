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
- NOTIFY: acknowledged (NOERROR, AA) and logged with its source and
  serial, as a nameserver's word on the serial it serves; NOTAUTH for zones
  it does not hold. Each (source, zone) is held to ``[mdns] notify_rate``: past it the
  newest NOTIFY waits for its turn (:mod:`zoneflow.mdns.notify_limit`), so
  a flood does no database work and never crowds out queries.
- Catalog zones (RFC 9432): each pool's catalog, when it has one, listing the
  pool's zones as members; its SOA read from the pool's row, its transfer
  streamed like a zone's, so 10,000 members cost an SOA query nothing more.
- REFUSED for zones it does not hold, NOTIMP for other opcodes, FORMERR for
  what cannot be parsed (when at least the header can be read; else nothing).
  Messages with the QR bit set are never answered, so two servers cannot
  bounce replies at each other.

Where each part lives:

- :mod:`~zoneflow.mdns.server`: the UDP and TCP sockets, the thread pools that
  answer (datagrams on one, TCP clients on another), flood, backlog and
  slow-client limits; ``MdnsServer`` and ``run``.
- :mod:`~zoneflow.mdns.responder`: one request to its replies (parsing, TSIG
  checks, QUERY answers), handing NOTIFY and transfers on to
  :mod:`~zoneflow.mdns.notify` and :mod:`~zoneflow.mdns.zone_transfer`.
- :mod:`~zoneflow.mdns.snapshot` and :mod:`~zoneflow.mdns.caches`: zones
  rendered as DNS data, and what is kept between requests.
- :mod:`~zoneflow.mdns.xfr`: transfer messages packed into wire format;
  :mod:`~zoneflow.mdns.transfers`: the log of transfers served.
- :mod:`~zoneflow.mdns.access`, :mod:`~zoneflow.mdns.keyring`,
  :mod:`~zoneflow.mdns.notify_limit`, :mod:`~zoneflow.mdns.replies`: access
  lists, TSIG keys, NOTIFY rates, reply building.
- :mod:`~zoneflow.mdns.shared_ports`: UDP answers sent again to a client
  port two of its sockets hold at once (BIND9's refreshes can).

See doc/mdns.md for the whole picture.
"""
