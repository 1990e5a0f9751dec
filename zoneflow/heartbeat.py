"""Heartbeats: each running service says, every few seconds, that it is up.

``zoneflow conductor``, ``zoneflow mdns``, ``zoneflow api`` and each part of
``zoneflow all-in-one`` write their row of the ``service_statuses`` table
(Designate's ``/v2/service_statuses``) every ``[heartbeat] interval``
seconds: UP, what the service can do (``capabilities``) and counters of
what it did (``stats``). A service that stops cleanly writes DOWN; one that
dies simply stops writing, and is shown DOWN once its last heartbeat is
older than ``[heartbeat] timeout``. Rows silent for ``forget_after`` are
removed, so a host's old process ids do not pile up.

A service is named by its kind and ``hostname``: the host and the process
id (``host-1234``), which is also a conductor's default name.

This module sits below every service it serves (mdns imports it, and must
not reach the conductor through it): what a conductor reports is built
beside the conductor, in zoneflow.conductor.daemon.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any

from zoneflow import exceptions, objects, options
from zoneflow.storage import models, services

LOG = logging.getLogger(__name__)
CONF = options.CONF


CONDUCTOR = "conductor"
MDNS = "mdns"
API = "api"


def default_hostname() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Heartbeat:
    """A thread writing one service's status every ``[heartbeat] interval`` seconds."""

    def __init__(
        self,
        service_name: str,
        *,
        hostname: str | None = None,
        capabilities: Mapping[str, Any] | None = None,
        stats: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        self.service_name = service_name
        self.hostname = hostname or default_hostname()
        self.capabilities = dict(capabilities or {})
        self._stats = stats or dict
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self, status: str = objects.ServiceState.UP) -> None:
        """Write the status now; a database away is logged, not raised."""
        try:
            services.heartbeat(
                self.service_name,
                self.hostname,
                status=status,
                capabilities=self.capabilities,
                stats=self._stats(),
            )
            if status == objects.ServiceState.UP:
                forget = datetime.timedelta(seconds=CONF.heartbeat.forget_after)
                services.forget_before(models.utcnow() - forget)
        except exceptions.ServiceUnavailable as exc:
            LOG.warning("%s heartbeat not written: %s", self.service_name, exc)

    def start(self) -> None:
        self.beat()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{self.service_name}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(CONF.heartbeat.interval):
            try:
                self.beat()
            except Exception:
                LOG.exception("%s heartbeat failed", self.service_name)

    def stop(self) -> None:
        """Stop beating and say DOWN."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.beat(objects.ServiceState.DOWN)


# --- what each service reports ------------------------------------------------------


def for_mdns(server: Any) -> Heartbeat:
    """mdns's heartbeat: where it listens, the transfers it served by kind, the
    most UDP queries it had in progress at once since the last beat (how near its
    busy limit it runs), and since it started, the UDP questions from a port that
    had another in hand (answered again: zoneflow.mdns.shared_ports) and those
    asked again (answers that did not reach their client in time)."""
    return Heartbeat(
        MDNS,
        capabilities={"host": server.host, "port": server.port},
        # A copy first: mdns's threads add kinds to the counter as they serve.
        stats=lambda: {
            **{
                f"transfers_{kind.lower()}": count
                for kind, count in dict(server.responder.transfers).items()
            },
            "queries_in_progress_peak": server.queries_in_progress_peak(),
            "queries_from_shared_ports": server.shared_ports.shared,
            "queries_asked_again": server.shared_ports.retries,
        },
    )


def for_api(server: Any) -> Heartbeat:
    """The API's heartbeat: its URL and how it identifies callers."""
    return Heartbeat(API, capabilities={"url": server.url, "auth_strategy": CONF.api.auth_strategy})
