"""Every configuration option zoneflow has, for oslo-config-generator.

``oslo-config-generator --namespace zoneflow --namespace oslo.db --namespace
keystonemiddleware.auth_token`` writes a
sample zoneflow.conf from :func:`list_opts`. The options themselves are
defined and registered in :mod:`zoneflow.options`.
"""

from __future__ import annotations

from collections.abc import Sequence

from oslo_config import cfg

from zoneflow import options
from zoneflow.storage import db


def list_opts() -> list[tuple[str, Sequence[cfg.Opt]]]:
    return [
        (
            "api",
            [
                *options.server_opts,
                *options.auth_opts,
                *options.view_opts,
                *options.paging_opts,
                *options.import_opts,
            ],
        ),
        ("central", options.central_opts),
        ("database", db.busy_opts),
        ("quota", options.quota_opts),
        ("heartbeat", options.heartbeat_opts),
        ("jobboard", options.jobboard_opts),
        ("conductor", [*options.conductor_opts, *options.metrics_opts]),
        ("engine", options.engine_opts),
        ("flows", options.flow_opts),
        ("mdns", options.mdns_opts),
        ("storage", options.storage_opts),
        ("tsig", options.tsig_opts),
    ]
