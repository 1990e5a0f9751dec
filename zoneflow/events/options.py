"""The event stream's options (see zoneflow.events and doc/events.md).

Registered on import, which is all this module does: it imports nothing but
oslo.config, so :func:`zoneflow.config.setup` can register every package's
options without loading the package (see :mod:`zoneflow.opts`).
"""

from __future__ import annotations

from oslo_config import cfg

CONF = cfg.CONF

events_opts = [
    cfg.StrOpt(
        "driver",
        default="auto",
        help="How subscribers learn of new events: 'inprocess' (woken by this process's "
        "own commits, and a look at the events table every poll_interval for other "
        "processes': all-in-one, SQLite) or 'postgres' (LISTEN/NOTIFY on the database "
        "itself, for a deployment on PostgreSQL; it also carries mdns's word that a "
        "nameserver serves a serial to the polls of every conductor). 'auto': postgres "
        "on a PostgreSQL database, inprocess otherwise. Entry points of "
        "zoneflow.events.drivers.",
    ),
    cfg.FloatOpt(
        "poll_interval",
        default=1.0,
        min=0.05,
        help="Seconds between the in-process driver's looks at the events table for "
        "events other processes published; the postgres driver's fallback if a "
        "notification is missed while it reconnects.",
    ),
    cfg.FloatOpt(
        "model_sweep_interval",
        default=300.0,
        min=1.0,
        help="Seconds between a long-running process's re-reads of storage for its "
        "propagation model (zoneflow.model), which otherwise follows the events: what "
        "reached storage without an event is shown from the next read on.",
    ),
    cfg.IntOpt(
        "retention",
        default=3600,
        min=60,
        help="Seconds events are kept: a subscriber reconnecting within it with "
        "Last-Event-ID misses none.",
    ),
    cfg.FloatOpt(
        "heartbeat_interval",
        default=5.0,
        min=0.1,
        help="Seconds between a publisher's heartbeats (its last activity in the "
        "event_publishers table; each beat also reaps and prunes).",
    ),
    cfg.FloatOpt(
        "publisher_timeout",
        default=30.0,
        min=1.0,
        help="Seconds of silence after which a publisher is stale and its row reaped.",
    ),
    cfg.FloatOpt(
        "rate_limit",
        default=10.0,
        min=0.01,
        help="Events per second a publisher publishes at most for one key (one job, one "
        "target). Past it state changes coalesce: the newest state of the key is "
        "published when the key's turn comes, the states between are skipped.",
    ),
    cfg.FloatOpt(
        "flush_interval",
        default=0.1,
        min=0.0,
        help="Seconds a publisher waits after writing its events before it writes again: "
        "what came meanwhile goes in one transaction. Every transaction that publishes "
        "takes one lock, held to its commit, that keeps event ids in commit order; fewer, "
        "fuller transactions wait for it less. 0: write as soon as an event is due.",
    ),
]
CONF.register_opts(events_opts, group="events")
