"""The tasks zone flows are built from.

Every task is idempotent, because a resumed job runs the tasks that were in
flight when its conductor died a second time: creating a zone a target
already has succeeds, deleting one it lacks succeeds, and a status write
only ever moves a served serial forward.

Tasks read the zone from storage when they run instead of trusting a
snapshot taken when the job was posted, so a job that runs late acts on
the zone as it is now (a zone deleted meanwhile is not created again).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import dns.exception
from oslo_config import cfg
from taskflow import task
from taskflow.types import failure as tf_failure

from zoneflow import backends, exceptions, objects
from zoneflow.dns import query
from zoneflow.storage import api as storage

LOG = logging.getLogger(__name__)
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
        help="Seconds between SOA queries while waiting for a nameserver.",
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
        "renotify_interval",
        default=1.0,
        min=0.1,
        help="Seconds between repeated NOTIFYs while a nameserver lags.",
    ),
]
CONF.register_opts(flow_opts, group="flows")


def target_result(target_id: str) -> str:
    """The name under which a target's outcome is stored in the flow."""
    return f"target:{target_id}"


def served_result(host: str, port: int) -> str:
    return f"served:{host}:{port}"


def _reason(failures: dict[str, tf_failure.Failure]) -> str:
    return "; ".join(str(f.exception_str) for f in failures.values()) or "the job failed"


class BeginZoneAction(task.Task):
    """First task of every zone flow; its revert records why the job failed.

    When the flow fails, TaskFlow reverts every task that ran, this one last,
    and it receives the failures: the zone goes to ERROR with their text as
    the reason (if no newer change has been made since).
    """

    default_provides = "zone_name"

    def execute(self, zone_id: str, serial: int) -> str:
        zone = storage.get_zone_any(zone_id)
        if zone is None:
            raise exceptions.ZoneNotFound(f"zone {zone_id} no longer exists")
        LOG.info("%s of %s at serial %s begins", self.name, zone.name, serial)
        return zone.name

    def revert(
        self, zone_id: str, serial: int, flow_failures: dict[str, tf_failure.Failure], **_: Any
    ) -> None:
        reason = _reason(flow_failures)
        LOG.warning("zone %s serial %s: job failed and was reverted: %s", zone_id, serial, reason)
        storage.set_zone_status(zone_id, serial=serial, status=objects.ERROR, error=reason)


class ZoneActionOnTarget(task.Task):
    """Create, update or delete a zone on one target, with bounded retries.

    A target that keeps failing does not fail the task: the outcome is
    returned so the consensus check can weigh it against the pool's
    threshold. Revert (create only) removes the zone again.
    """

    def __init__(self, action: str, target_id: str) -> None:
        super().__init__(
            name=f"{action.lower()}-zone-on-target-{target_id}",
            provides=target_result(target_id),
        )
        self.action = action
        self.target_id = target_id

    def execute(self, zone_id: str, serial: int) -> dict[str, Any]:
        wanted = storage.get_target_action(zone_id, self.target_id)
        zone, target = wanted.zone, wanted.target
        if zone is None:
            raise exceptions.ZoneNotFound(f"zone {zone_id} no longer exists")
        if self.action != objects.DELETE and wanted.zone_deleted:
            # The zone was deleted while this job waited; its delete job owns it now.
            return {"ok": True, "error": None, "skipped": True}
        if self.action != objects.UPDATE and wanted.provisioning == objects.CATALOG:
            return self._through_catalog(storage.get_pool(target.pool_id), target)
        backend = backends.get_backend(target)
        call = {
            objects.CREATE: backend.create_zone,
            objects.UPDATE: backend.update_zone,
            objects.DELETE: backend.delete_zone,
        }[self.action]
        delay = CONF.flows.target_retry_delay
        error = ""
        for attempt in range(1, CONF.flows.target_attempts + 1):
            try:
                call(zone)
                return {"ok": True, "error": None, "skipped": False}
            except exceptions.BackendError as exc:
                error = str(exc)
                LOG.warning(
                    "%s of %s, try %d of %d: %s",
                    self.action,
                    zone.name,
                    attempt,
                    CONF.flows.target_attempts,
                    error,
                )
            if attempt < CONF.flows.target_attempts:
                time.sleep(delay)
                delay *= 2
        return {"ok": False, "error": error, "skipped": False}

    @staticmethod
    def _through_catalog(pool: objects.Pool, target: objects.PoolTarget) -> dict[str, Any]:
        """Catalog provisioning: the zone is (or is no longer) in the pool's catalog
        since storage wrote it; NOTIFY the catalog so the target reads it now.

        An unanswered NOTIFY fails nothing: the target also reads the catalog
        every ``catalog_zone_refresh`` seconds, and polling decides.
        """
        catalog = storage.get_catalog(pool.id)
        assert catalog is not None  # pools.parse requires a catalog_zone for this mode
        host = target.options.get("host")
        if host is not None:
            _notify(catalog.name, str(host), int(target.options.get("port", 53)), catalog.serial)
        return {"ok": True, "error": None, "skipped": False, "catalog": True}

    def revert(self, zone_id: str, result: Any, **_: Any) -> None:
        if self.action != objects.CREATE or not isinstance(result, dict) or not result.get("ok"):
            return
        zone = storage.get_zone_any(zone_id)
        if zone is None or result.get("skipped"):
            return
        if result.get("catalog"):
            # One target cannot leave a catalog; the zone stays listed until
            # it is deleted, and its ERROR status says why.
            return
        backend = backends.get_backend(storage.get_target(self.target_id))
        backend.delete_zone(zone)
        LOG.info("reverted: %s removed from target %s", zone.name, self.target_id)


class ConsensusCheck(task.Task):
    """Fail the flow (so reverts run) when too few targets succeeded."""

    default_provides = "succeeded_targets"

    def __init__(self, target_ids: list[str], threshold: int, labels: dict[str, str]) -> None:
        super().__init__(name="consensus-check", requires=[target_result(t) for t in target_ids])
        self.target_ids = target_ids
        self.threshold = threshold
        self.labels = labels

    def execute(self, **results: dict[str, Any]) -> list[str]:
        succeeded = [t for t in self.target_ids if results[target_result(t)]["ok"]]
        if len(succeeded) * 100 < self.threshold * len(self.target_ids):
            failed = "; ".join(
                f"{self.labels.get(t, t)}: {results[target_result(t)]['error']}"
                for t in self.target_ids
                if t not in succeeded
            )
            raise exceptions.ConsensusFailure(
                f"{len(succeeded)} of {len(self.target_ids)} targets succeeded, below the "
                f"pool's threshold of {self.threshold}% ({failed})"
            )
        return succeeded


def _notify(zone_name: str, host: str, port: int, serial: int) -> None:
    try:
        query.send_notify(zone_name, host, port, serial=serial, timeout=CONF.flows.query_timeout)
    except (dns.exception.DNSException, OSError) as exc:
        # Not fatal: polling re-sends NOTIFY and decides whether it is served.
        LOG.info("NOTIFY of %s to %s:%s got no answer: %s", zone_name, host, port, exc)


class SendNotify(task.Task):
    """NOTIFY one nameserver so it fetches the new serial from mdns now."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(name=f"send-notify-{host}:{port}")
        self.host, self.port = host, port

    def execute(self, zone_name: str, serial: int) -> None:
        _notify(zone_name, self.host, self.port, serial)


class PollForSerial(task.Task):
    """Ask one nameserver for the zone's SOA until it serves ``serial`` or later.

    Returns what was seen rather than raising, so a lagging nameserver is
    recorded as such and weighed against the threshold.
    """

    def __init__(self, host: str, port: int, *, expect_removed: bool = False) -> None:
        super().__init__(
            name=f"poll-for-{'removal' if expect_removed else 'serial'}-{host}:{port}",
            provides=served_result(host, port),
        )
        self.host, self.port = host, port
        self.expect_removed = expect_removed

    def execute(self, zone_id: str, zone_name: str, serial: int) -> dict[str, Any]:
        deadline = time.monotonic() + CONF.flows.poll_timeout
        next_notify = time.monotonic() + CONF.flows.renotify_interval
        seen: int | None = None
        error = "no answer"
        while True:
            try:
                if self.expect_removed:
                    if query.zone_is_refused(
                        zone_name, self.host, self.port, timeout=CONF.flows.query_timeout
                    ):
                        return {"ok": True, "serial": None, "error": None}
                    error = "still answers for the zone"
                else:
                    seen = query.soa_serial(
                        zone_name, self.host, self.port, timeout=CONF.flows.query_timeout
                    )
                    error = "zone not served" if seen is None else f"serves serial {seen}"
                    # RFC 1982 arithmetic is not needed: zoneflow serials only grow
                    # and stay below 2**32 (see storage.api._next_serial).
                    if seen is not None and seen >= serial:
                        return {"ok": True, "serial": seen, "error": None}
            except (dns.exception.DNSException, OSError) as exc:
                error = f"no answer to SOA query ({exc or type(exc).__name__})"
            now = time.monotonic()
            if now >= deadline:
                return {
                    "ok": False,
                    "serial": seen,
                    "error": f"{self.host}:{self.port} after {CONF.flows.poll_timeout:g}s: {error}",
                }
            if not self.expect_removed and now >= next_notify:
                if storage.zone_is_deleted(zone_id):
                    return {"ok": False, "serial": seen, "error": "zone deleted meanwhile"}
                _notify(zone_name, self.host, self.port, serial)
                next_notify = now + CONF.flows.renotify_interval
            time.sleep(CONF.flows.poll_interval)


class UpdateStatus(task.Task):
    """Write what the job achieved: per-target rows, then the zone's status.

    The zone is ACTIVE only if enough nameservers were seen serving the
    serial (the pool's threshold), never on the targets' word alone.
    """

    def __init__(
        self,
        action: str,
        target_ids: list[str],
        nameservers: list[tuple[str, int]],
        target_addresses: dict[str, tuple[str, int]],
        threshold: int,
    ) -> None:
        super().__init__(
            name="update-status",
            requires=[target_result(t) for t in target_ids]
            + [served_result(h, p) for h, p in nameservers],
        )
        self.action = action
        self.target_ids = target_ids
        self.nameservers = nameservers
        self.target_addresses = target_addresses
        self.threshold = threshold

    def execute(self, zone_id: str, serial: int, **results: dict[str, Any]) -> str:
        served = {(h, p): results[served_result(h, p)] for h, p in self.nameservers}
        for target_id in self.target_ids:
            self._record_target(
                zone_id, serial, target_id, results[target_result(target_id)], served
            )
        ok = [ns for ns, seen in served.items() if seen["ok"]]
        if len(ok) * 100 >= self.threshold * len(served):
            if self.action == objects.DELETE:
                storage.finish_zone_delete(zone_id, serial=serial)
                return objects.DELETED
            storage.set_zone_status(
                zone_id, serial=serial, status=objects.ACTIVE, action=objects.NONE
            )
            return objects.ACTIVE
        lagging = "; ".join(str(seen["error"]) for seen in served.values() if not seen["ok"])
        storage.set_zone_status(
            zone_id,
            serial=serial,
            status=objects.ERROR,
            error=f"{len(ok)} of {len(served)} nameservers serve serial {serial}, below the "
            f"pool's threshold of {self.threshold}% ({lagging})",
        )
        return objects.ERROR

    def _record_target(
        self,
        zone_id: str,
        serial: int,
        target_id: str,
        outcome: dict[str, Any],
        served: dict[tuple[str, int], dict[str, Any]],
    ) -> None:
        if not outcome["ok"]:
            storage.set_target_status(
                zone_id, target_id, serial=0, status=objects.ERROR, error=outcome["error"]
            )
            return
        address = self.target_addresses.get(target_id)
        seen = served.get(address) if address else None
        if seen is None:
            # A target that is not also a pool nameserver (a hidden primary, the
            # fake backend): its own success is all there is to record.
            status = objects.DELETED if self.action == objects.DELETE else objects.ACTIVE
            storage.set_target_status(zone_id, target_id, serial=serial, status=status)
        elif seen["ok"]:
            status = objects.DELETED if self.action == objects.DELETE else objects.ACTIVE
            storage.set_target_status(
                zone_id, target_id, serial=seen["serial"] or serial, status=status
            )
        else:
            storage.set_target_status(
                zone_id,
                target_id,
                serial=seen["serial"] or 0,
                status=objects.ERROR,
                error=seen["error"],
            )
