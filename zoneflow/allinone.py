"""All-in-one mode: conductor, outbox relay, mdns, the REST API, the producer and the
inspector in one process.

The embedded default: SQLite and the in-process zake jobboard need no other
service, so one ``zoneflow all-in-one`` plus a pool of nameservers is a
working system. CLI commands in other processes write their jobs to the
outbox, and this process's relay posts them.
"""

from __future__ import annotations

import logging
import signal
import threading

from oslo_config import cfg

from zoneflow import heartbeat, jobs
from zoneflow.api import server as api_server
from zoneflow.central import changes as central_changes
from zoneflow.conductor import daemon
from zoneflow.engine import metrics
from zoneflow.inspector import daemon as inspector_daemon
from zoneflow.mdns import server as mdns_server
from zoneflow.producer import daemon as producer_daemon
from zoneflow.storage import migration
from zoneflow.taskflow_adapter import jobboard, persistence

LOG = logging.getLogger(__name__)
CONF = cfg.CONF


class AllInOne:
    def __init__(self, *, api: bool = True) -> None:
        migration.upgrade()
        persistence.upgrade()
        self.mdns = mdns_server.MdnsServer()
        self.conductor = daemon.Conductor()
        if self.conductor.relay is not None:
            # Changes made in this process (the API's too) are posted at once,
            # not at the next poll.
            central_changes.on_change(self.conductor.relay.wake)
        self.api = api_server.ApiServer() if api else None
        # On zake, its shards are shared with no one: it holds them all.
        self.producer = producer_daemon.Producer()
        self.heartbeats: list[heartbeat.Heartbeat] = []
        # The inspector writes its own heartbeat (started and stopped with it).
        self.inspector = inspector_daemon.Inspector() if CONF.inspector.enabled else None

    def start(self) -> None:
        self.mdns.start_in_thread()
        self._take_back_lost_jobs()
        self.conductor.start()
        if self.api is not None:
            self.api.start()
        self.producer.start()
        self.heartbeats = [
            heartbeat.for_mdns(self.mdns),
            daemon.conductor_heartbeat(self.conductor),
        ]
        if self.api is not None:
            self.heartbeats.append(heartbeat.for_api(self.api))
        for beat in self.heartbeats:
            beat.start()
        if self.inspector is not None:
            self.inspector.start()
        LOG.info(
            "all-in-one running: mdns on %s:%s, conductor %s on %s, API %s",
            self.mdns.host,
            self.mdns.port,
            self.conductor.name,
            jobboard.describe(),
            self.api.url if self.api is not None else "off",
        )

    def _take_back_lost_jobs(self) -> None:
        """Post again, or end, the jobs a killed predecessor took with its board.

        The zake board lives in this process's memory: the jobs it held when
        the last all-in-one was killed are gone from it, their logbooks left
        PENDING or RUNNING. Done before the conductor's relay posts anything,
        so a job it posts now is not mistaken for a lost one.
        """
        if CONF.jobboard.backend != "zake":
            return
        taken = jobs.take_back_unfinished(self.conductor.board, self.conductor.persistence)
        for job, state in taken:
            if state == jobs.Outcome.LOST:
                metrics.job_ended(job.kind, state, metrics.LOST)
            elif state == jobs.Outcome.SUPERSEDED:
                metrics.job_ended(job.kind, state)
            LOG.warning(
                "job %s (%s %s serial %s) was lost with the last all-in-one: %s",
                job.id,
                job.kind,
                job.zone_name,
                job.serial,
                "posted again" if state not in jobs.OVER else f"now {state}",
            )

    def stop(self) -> None:
        if self.inspector is not None:
            self.inspector.stop()
        for beat in self.heartbeats:
            beat.stop()
        self.producer.stop()
        if self.api is not None:
            self.api.stop()
        self.conductor.stop()
        self.mdns.stop_thread()


def run_forever() -> None:
    services = AllInOne()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    services.start()
    stopping.wait()
    services.stop()
