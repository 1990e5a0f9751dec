"""The flows' options: how often and how long a task tries a target and polls its nameservers.

Registered on import, which is all this module does: it imports nothing but
oslo.config, so :func:`zoneflow.config.setup` can register every package's
options without loading the package (see :mod:`zoneflow.opts`).
"""

from __future__ import annotations

from oslo_config import cfg

CONF = cfg.CONF

flow_opts = [
    cfg.IntOpt(
        "target_attempts",
        default=3,
        min=1,
        help="Tries of one action on one target before it counts as failed.",
    ),
    cfg.FloatOpt(
        "target_retry_delay",
        default=0.5,
        min=0,
        help="Seconds between tries on one target (doubles each try).",
    ),
    cfg.FloatOpt(
        "poll_interval",
        default=0.05,
        min=0.01,
        help="Seconds between SOA queries while waiting for a nameserver, for the first "
        "renotify_interval of a poll; then the wait grows by half each query, up to "
        "poll_interval_max. A nameserver heard in the last minute NOTIFYing mdns of the "
        "serials it loads (BIND9's also-notify, doc/backends.md) is asked at its word, and "
        "every poll_interval_max from the start.",
    ),
    cfg.FloatOpt(
        "poll_interval_max",
        default=0.5,
        min=0.01,
        help="Most seconds between SOA queries to a nameserver that lags (see "
        "poll_interval): one that has not served a change within a second is busy, and "
        "asking it twenty times a second only adds to its load and the conductor's.",
    ),
    cfg.IntOpt(
        "poll_window",
        default=10,
        min=1,
        help="Zones of a batch asked of a nameserver at each round of its poll: the first "
        "one still waited for and those after it. A nameserver transfers several zones at "
        "once and serves them in any order (BIND9: transfers-per-ns, 10 in the settings "
        "doc/backends.md recommends); one asked only after the zones before it would wait "
        "for them. 1 follows the first zone alone.",
    ),
    cfg.FloatOpt(
        "poll_timeout",
        default=30.0,
        min=0.1,
        help="Seconds a nameserver gets to serve a change before it counts as failed.",
    ),
    cfg.FloatOpt(
        "query_timeout", default=1.0, min=0.05, help="Seconds one SOA query or NOTIFY may take."
    ),
    cfg.FloatOpt(
        "database_wait",
        default=30.0,
        min=0,
        help="Seconds a task waits for the database to come back (a restart, a failover) "
        "before it fails, and its job is reverted.",
    ),
    cfg.FloatOpt(
        "renotify_interval",
        default=1.0,
        min=0.1,
        help="Seconds until a nameserver that lags gets the NOTIFY again; each later "
        "NOTIFY waits twice as long as the one before, up to renotify_interval_max.",
    ),
    cfg.FloatOpt(
        "renotify_interval_max",
        default=8.0,
        min=0.1,
        help="Most seconds between repeated NOTIFYs to a nameserver that lags (see "
        "renotify_interval): one that has the NOTIFY and is busy gains nothing from "
        "more, and each costs the conductor a read of the zone and the pool.",
    ),
]
CONF.register_opts(flow_opts, group="flows")
