"""Every configuration option zoneflow has, for oslo-config-generator and for start-up.

``oslo-config-generator --namespace zoneflow --namespace oslo.db --namespace
keystonemiddleware.auth_token`` writes a sample zoneflow.conf from
:func:`list_opts`. Importing this module registers every option, as
:func:`zoneflow.config.setup` needs: each package's ``options`` module
imports nothing but oslo.config, so this costs no package's libraries
(``zoneflow zone list`` loads no TaskFlow, FastAPI nor kazoo).
"""

from __future__ import annotations

from collections.abc import Sequence

from oslo_config import cfg

from zoneflow import options
from zoneflow.api import options as api_options
from zoneflow.central import options as central_options
from zoneflow.conductor import options as conductor_options
from zoneflow.dns import options as dns_options
from zoneflow.engine import options as engine_options
from zoneflow.events import options as events_options
from zoneflow.flows import options as flows_options
from zoneflow.inspector import options as inspector_options
from zoneflow.mdns import options as mdns_options
from zoneflow.producer import options as producer_options
from zoneflow.storage import db
from zoneflow.storage import options as storage_options
from zoneflow.taskflow_adapter import options as taskflow_adapter_options


def list_opts() -> list[tuple[str, Sequence[cfg.Opt]]]:
    return [
        (
            "api",
            [
                *api_options.server_opts,
                *api_options.auth_opts,
                *api_options.view_opts,
                *api_options.paging_opts,
                *api_options.import_opts,
            ],
        ),
        ("central", central_options.central_opts),
        ("database", db.busy_opts),
        ("quota", central_options.quota_opts),
        ("heartbeat", options.heartbeat_opts),
        ("jobboard", taskflow_adapter_options.jobboard_opts),
        (
            "conductor",
            [
                *conductor_options.conductor_opts,
                *engine_options.metrics_opts,
                *engine_options.relay_opts,
            ],
        ),
        ("engine", engine_options.engine_opts),
        ("events", events_options.events_opts),
        ("flows", flows_options.flow_opts),
        ("mdns", mdns_options.mdns_opts),
        ("inspector", inspector_options.inspector_opts),
        ("central", central_options.health_opts),
        ("producer", producer_options.producer_opts),
        ("storage", storage_options.storage_opts),
        ("tsig", dns_options.tsig_opts),
    ]


def update_defaults() -> None:
    """The defaults zoneflow gives other libraries' options, for the sample config
    (oslo-config-generator calls this before it lists the oslo.db namespace)."""
    from oslo_db import options as db_options

    cfg.set_defaults(db_options.database_opts, max_pool_size=db.POOL_SIZE)
