"""mdns's options: where it listens, whom it answers, how it sends a zone.

Registered on import, which is all this module does: it imports nothing but
oslo.config, so :func:`zoneflow.config.setup` can register every package's
options without loading the package (see :mod:`zoneflow.opts`).
"""

from __future__ import annotations

from oslo_config import cfg

CONF = cfg.CONF

mdns_opts = [
    cfg.HostAddressOpt("host", default="127.0.0.1", help="Address mdns listens on (UDP and TCP)."),
    cfg.PortOpt("port", default=5354, help="Port mdns listens on; 0 picks a free one."),
    cfg.FloatOpt(
        "tcp_timeout",
        default=10.0,
        min=0.1,
        help="Seconds a TCP client may stay idle, or take to send a query or read a reply, "
        "before mdns closes its connection.",
    ),
    cfg.IntOpt(
        "threads",
        default=8,
        min=1,
        help="Threads answering UDP requests (each storage read runs on one of them).",
    ),
    cfg.IntOpt(
        "tcp_threads",
        default=16,
        min=1,
        help="Threads answering TCP clients (zone transfers, mostly), apart from the UDP "
        "ones: however many UDP queries wait, a transfer's next messages never wait "
        "behind them. Each BIND9 target transfers up to its transfers-per-ns zones at "
        "once, and a transfer's thread mostly waits on the database: under the load "
        "benchmark (8 targets) a transfer took 0.57 s (p50) with 4 threads, 0.40 s with 16.",
    ),
    cfg.BoolOpt(
        "repeat_to_shared_ports",
        default=True,
        help="When a client port asks a second question over UDP while the answer to an "
        "earlier one may still be awaited there, send that port's answers again 0.1, 0.5, "
        "1.5 and 3 s later. BIND9 can hold one port with two sockets at once (its SOA "
        "queries and NOTIFYs), and the kernel then gives both answers to one of them: the "
        "other waits 5 s for BIND9's retry (zoneflow.mdns.shared_ports, doc/mdns.md). "
        "Clients drop copies of answers they have.",
    ),
    cfg.IntOpt(
        "xfr_message_size",
        default=20480,
        min=512,
        max=65535,
        help="Largest message of a zone transfer, in bytes. BIND's transfer-message-size "
        "default: big enough to carry hundreds of records, small enough to keep "
        "name compression effective and memory per message low.",
    ),
    cfg.IntOpt(
        "snapshot_cache_size",
        default=16,
        min=0,
        help="Rendered zones kept in memory, each for one serial: the secondaries of a "
        "pool transferring one change render it once.",
    ),
    cfg.ListOpt(
        "allow_transfer",
        default=["127.0.0.0/8", "::1/128"],
        help="Networks (CIDR) whose hosts may transfer zones (AXFR, IXFR); others get "
        "REFUSED. List your nameservers' addresses here.",
    ),
    cfg.ListOpt(
        "allow_notify",
        default=["127.0.0.0/8", "::1/128"],
        help="Networks (CIDR) whose NOTIFYs mdns records; others get REFUSED.",
    ),
    cfg.FloatOpt(
        "notify_rate",
        default=5.0,
        min=0.1,
        help="NOTIFYs a second processed per source address and zone, past a burst of "
        "notify_burst. Past it the newest one waits for its turn and older waiting ones "
        "are dropped, so the last serial announced is always recorded and a flood does "
        "no database work (UDP; over TCP each NOTIFY waits for its turn).",
    ),
    cfg.IntOpt(
        "notify_burst",
        default=10,
        min=1,
        help="NOTIFYs per source address and zone processed at once before notify_rate applies.",
    ),
    cfg.BoolOpt(
        "require_tsig",
        default=False,
        help="Refuse every unsigned zone transfer, also for pools whose targets name no "
        "tsig_key_name (those require their key in any case).",
    ),
]
CONF.register_opts(mdns_opts, group="mdns")
