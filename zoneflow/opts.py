"""Every configuration option zoneflow has, for oslo-config-generator.

``oslo-config-generator --namespace zoneflow --namespace oslo.db --namespace
keystonemiddleware.auth_token`` writes a
sample zoneflow.conf from :func:`list_opts`. Importing this module also
registers every option, which :func:`zoneflow.config.setup` relies on.
"""

from __future__ import annotations

from collections.abc import Sequence

from oslo_config import cfg

from zoneflow import heartbeat
from zoneflow.api import auth as api_auth
from zoneflow.api import paging as api_paging
from zoneflow.api import server as api_server
from zoneflow.api import views as api_views
from zoneflow.api.v2 import zone_tasks as api_zone_tasks
from zoneflow.central import api as central_api
from zoneflow.central import quotas
from zoneflow.conductor import daemon, jobboard
from zoneflow.dns import tsig
from zoneflow.engine import executor, metrics
from zoneflow.flows import tasks
from zoneflow.mdns import server as mdns_server
from zoneflow.storage import api as storage_api


def list_opts() -> list[tuple[str, Sequence[cfg.Opt]]]:
    return [
        (
            "api",
            [
                *api_server.server_opts,
                *api_auth.auth_opts,
                *api_views.view_opts,
                *api_paging.paging_opts,
                *api_zone_tasks.import_opts,
            ],
        ),
        ("central", central_api.central_opts),
        ("quota", quotas.quota_opts),
        ("heartbeat", heartbeat.heartbeat_opts),
        ("jobboard", jobboard.jobboard_opts),
        ("conductor", [*daemon.conductor_opts, *metrics.metrics_opts]),
        ("engine", executor.engine_opts),
        ("flows", tasks.flow_opts),
        ("mdns", mdns_server.mdns_opts),
        ("storage", storage_api.storage_opts),
        ("tsig", tsig.tsig_opts),
    ]
