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

import datetime
import functools
import ipaddress
import logging
import time
from collections.abc import Callable, Collection
from typing import Any, TypeVar

import dns.exception
from taskflow import task
from taskflow.types import failure as tf_failure

from zoneflow import backends, exceptions, jobs, objects
from zoneflow.dns import query, rules
from zoneflow.flows import options
from zoneflow.flows.scratch import Scratch
from zoneflow.storage import api as storage
from zoneflow.taskflow_adapter import fencing

LOG = logging.getLogger(__name__)
CONF = options.CONF


F = TypeVar("F", bound=Callable[..., Any])


def _waits_for_database(method: F) -> F:
    """Run a task's method again while the database is unreachable, for a while.

    Failing instead would revert a whole job (remove a created zone from its
    targets again) over a database restart of a second. Running it again is
    safe: tasks are idempotent, as a resumed job runs them again anyway.
    """

    @functools.wraps(method)
    def run(self: task.Task, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + CONF.flows.database_wait
        delay = 0.1
        while True:
            try:
                return method(self, *args, **kwargs)
            except exceptions.DatabaseUnavailable as exc:
                if time.monotonic() + delay > deadline:
                    raise
                LOG.warning("%s waits %.1fs for the database: %s", self.name, delay, exc)
            time.sleep(delay)
            delay = min(2 * delay, 2.0)

    return run  # type: ignore[return-value]


def target_result(target_id: str) -> str:
    """The name under which a target's outcome is stored in the flow."""
    return f"target:{target_id}"


def served_result(host: str, port: int) -> str:
    return f"served:{host}:{port}"


def _reason(failures: dict[str, tf_failure.Failure]) -> str:
    return "; ".join(str(f.exception_str) for f in failures.values()) or "the job failed"


class Task(task.Task):
    """A task of a zone flow, which may run in several jobs at once.

    Jobs on one pool shape share their flow's task objects (see
    zoneflow.flows.zone): a task keeps nothing of a run on itself, and it
    reports no progress, because TaskFlow hangs each run's progress listener
    on the task object itself.
    """

    TASK_EVENTS = ()


class _Begin(Task):
    """First task of a zone flow; its revert records why the job failed.

    When the flow fails, TaskFlow reverts every task that ran, this one last,
    and it receives the failures: the zone goes to ERROR with their text as
    the reason (if no newer change has been made since). Its action stays, so
    a recovery knows what the zone was meant to become.
    """

    @_waits_for_database
    def revert(
        self,
        zone_id: str,
        serial: int,
        flow_failures: dict[str, tf_failure.Failure],
        fence_token: int | None = None,
        **_: Any,
    ) -> None:
        if fencing.lost(fence_token):
            return  # the job is another conductor's now: it decides the zone's status
        reason = _reason(flow_failures)
        if storage.set_zone_status(
            zone_id, serial=serial, status=objects.Status.ERROR, error=reason
        ):
            LOG.error(
                "zone %s serial %s is ERROR: its job was reverted: %s", zone_id, serial, reason
            )


class BeginZoneAction(_Begin):
    """First task of create-zone, update-zone and delete-zone: the zone's name.

    It reads the zone and every target of the job in one statement, and
    leaves them in the run's scratch for the targets' tasks.
    """

    default_provides = "zone_name"

    def __init__(self, target_ids: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_ids = target_ids

    @_waits_for_database
    def execute(
        self,
        zone_id: str,
        serial: int,
        fence_token: int | None = None,
        scratch: Scratch | None = None,
    ) -> str:
        fencing.check(fence_token)
        actions = storage.get_target_actions(zone_id, self.target_ids)
        if scratch is not None:
            scratch.targets = actions
        # Any target's row carries the zone; with none left, read it alone.
        zone = next((a.zone for a in actions.values()), None) or storage.get_zone_any(zone_id)
        if zone is None:
            raise exceptions.ZoneNotFound(f"zone {zone_id} no longer exists")
        LOG.info("%s of %s at serial %s begins", self.name, zone.name, serial)
        return zone.name


def _try_on_target(action: str, target: objects.PoolTarget, zone: objects.Zone) -> dict[str, Any]:
    """``action`` of ``zone`` on ``target``, up to ``[flows] target_attempts`` times;
    the outcome, never a raise."""
    call = _backend_call(target, action)
    delay = CONF.flows.target_retry_delay
    error = ""
    for attempt in range(1, CONF.flows.target_attempts + 1):
        try:
            call(zone)
            return {"ok": True, "error": None, "skipped": False}
        except exceptions.BackendError as exc:
            error = str(exc)
            LOG.info(
                "%s of %s on target %s, try %d of %d: %s",
                action,
                zone.name,
                target.label,
                attempt,
                CONF.flows.target_attempts,
                error,
            )
        if attempt < CONF.flows.target_attempts:
            time.sleep(delay)
            delay *= 2
    # Once per failed target, not per try: this is what an operator acts on.
    LOG.warning(
        "target %s failed %s of %s after %d tries: %s",
        target.label,
        action,
        zone.name,
        CONF.flows.target_attempts,
        error,
    )
    return {"ok": False, "error": error, "skipped": False}


def _in_service(target: objects.PoolTarget | None) -> bool:
    return target is not None and target.retired_at is None


def _retired(zone: objects.Zone, target_id: str) -> dict[str, Any]:
    """The outcome on a target the pool no longer has (retired, or gone since).

    Nothing is done there: the retire-target job deletes the pool's zones
    from it, and a zone created there now would outlive it. It counts
    neither for nor against the threshold.
    """
    LOG.info("%s: target %s has left the pool, nothing done there", zone.name, target_id)
    return {"ok": True, "error": None, "skipped": True, "retired": True}


def _backend_call(target: objects.PoolTarget, action: str) -> Callable[[objects.Zone], None]:
    backend = backends.get_backend(target)
    return {
        objects.Action.CREATE: backend.create_zone,
        objects.Action.UPDATE: backend.update_zone,
        objects.Action.DELETE: backend.delete_zone,
    }[objects.Action(action)]


def _record_reverted(
    zone_id: str,
    serial: int,
    target_id: str,
    action: str,
    outcome: Any,
    reason: str,
) -> None:
    """Record, for one target of a failed job, what the job leaves there and why.

    Only the newest change's job speaks for the zone: a job overtaken by a
    newer serial records nothing.
    """
    if not isinstance(outcome, dict) or outcome.get("skipped") or outcome.get("unchanged"):
        return
    zone = storage.get_zone_any(zone_id)
    if zone is None or zone.serial != serial:
        return
    if not outcome["ok"]:
        # Behind: its recorded serial stays what it last served.
        storage.set_target_status(
            zone_id, target_id, serial=0, status=objects.Status.ERROR, error=outcome["error"]
        )
    elif outcome.get("current"):
        # A recovery found it serving the serial already and left it alone.
        storage.set_target_status(
            zone_id, target_id, serial=int(outcome["serial"]), status=objects.Status.ACTIVE
        )
    elif action == objects.Action.DELETE:
        # A delete is never undone: the zone is wanted gone, and is gone here.
        storage.set_target_status(zone_id, target_id, serial=serial, status=objects.Status.DELETED)
    elif outcome.get("removed"):
        storage.set_target_status(
            zone_id,
            target_id,
            serial=0,
            status=objects.Status.ERROR,
            error=f"created, then removed again: {reason}",
        )
    else:
        # Kept (an update, a recovery, a catalog member): the change stays,
        # but nobody checked that this target serves it.
        storage.set_target_status(
            zone_id,
            target_id,
            serial=0,
            status=objects.Status.PENDING,
            error=f"serial {serial} kept (not reverted) but not verified: {reason}",
        )


class ZoneActionOnTarget(Task):
    """Create, update or delete a zone on one target, with bounded retries.

    A target that keeps failing does not fail the task: the outcome is
    returned so the consensus check can weigh it against the pool's
    threshold. Revert removes a created zone again (an update or a delete
    stays as it is, for recovery) and records what the target is left with.
    """

    def __init__(self, action: str, target_id: str) -> None:
        super().__init__(
            name=f"{action.lower()}-zone-on-target-{target_id}",
            provides=target_result(target_id),
        )
        self.action = action
        self.target_id = target_id

    @_waits_for_database
    def execute(
        self,
        zone_id: str,
        serial: int,
        fence_token: int | None = None,
        scratch: Scratch | None = None,
    ) -> dict[str, Any]:
        fencing.check(fence_token)
        # Read by this run's begin task; a resumed run's task reads its own.
        wanted = scratch.targets.get(self.target_id) if scratch is not None else None
        if wanted is None:
            wanted = storage.get_target_action(zone_id, self.target_id)
        zone, target = wanted.zone, wanted.target
        if zone is None:
            raise exceptions.ZoneNotFound(f"zone {zone_id} no longer exists")
        if target is None or not _in_service(target):
            return _retired(zone, self.target_id)
        if self.action != objects.Action.DELETE and (
            wanted.zone_deleted or zone.action == objects.Action.DELETE
        ):
            # The zone was deleted, or its delete asked for, while this job
            # waited: its delete job owns it now, and may have removed it from
            # this target already, so creating it here would leave it behind.
            # An earlier run of this task, cut short, may have done just that.
            if wanted.provisioning != objects.CATALOG:
                _take_back(zone, target)
            return {"ok": True, "error": None, "skipped": True}
        action = self.action
        if action == objects.Action.UPDATE and zone.action == objects.Action.CREATE:
            # Not created yet as far as anyone knows: its create job may not
            # have run (its conductor died, it waits on the board). This job,
            # the newest change, is the one to make it ACTIVE, so it creates
            # the zone (creating one that exists succeeds) rather than poll
            # for a zone no target has.
            action = objects.Action.CREATE
        if action != objects.Action.UPDATE and wanted.provisioning == objects.CATALOG:
            return _through_catalog(storage.get_pool(target.pool_id), target)
        outcome = _try_on_target(action, target, zone)
        # TakeBackIfDeleted checks, once for all targets, that no delete raced it.
        return {**outcome, "created": action == objects.Action.CREATE and outcome["ok"]}

    @_waits_for_database
    def revert(
        self,
        zone_id: str,
        serial: int,
        result: Any,
        flow_failures: dict[str, tf_failure.Failure],
        fence_token: int | None = None,
        **_: Any,
    ) -> None:
        if fencing.lost(fence_token):
            return  # the job is another conductor's now: undoing would undo its work
        if not isinstance(result, dict):
            return  # this task itself failed: nothing was done here
        outcome = (
            _remove_again(zone_id, self.target_id, result)
            if self.action == objects.Action.CREATE
            else result
        )
        _record_reverted(
            zone_id, serial, self.target_id, self.action, outcome, _reason(flow_failures)
        )


def _take_back(zone: objects.Zone, target: objects.PoolTarget) -> None:
    """Remove from a target a zone that is wanted gone (its delete job does too).

    Not if a newer zone has its name by now: a target knows zones by name.
    A failure is left to the delete job, which removes the zone anyway.
    """
    try:
        if storage.get_zone(zone.name).id != zone.id:
            return
    except exceptions.ZoneNotFound:
        pass
    _try_on_target(objects.Action.DELETE, target, zone)


class TakeBackIfDeleted(Task):
    """Take the zone back from the targets this job created it on, if its
    delete was asked for meanwhile; the ids of those targets.

    The zone's delete job may have removed it from a target before this job
    created it there, and would leave it behind. One read, begun after every
    target's task has finished, sees any delete asked before those creates
    ended; a delete asked later has its job remove the zone after them.
    """

    default_provides = "taken_back"

    def __init__(self, target_ids: list[str]) -> None:
        super().__init__(
            name="take-back-if-deleted", requires=[target_result(t) for t in target_ids]
        )
        self.target_ids = target_ids

    @_waits_for_database
    def execute(
        self, zone_id: str, fence_token: int | None = None, **results: dict[str, Any]
    ) -> list[str]:
        created = [t for t in self.target_ids if results[target_result(t)].get("created")]
        if not created or not storage.zone_wanted_gone(zone_id):
            return []
        fencing.check(fence_token)
        zone = storage.get_zone_any(zone_id)
        for target_id in created:
            target = storage.find_target(target_id)
            if zone is not None and target is not None and _in_service(target):
                _take_back(zone, target)
        return created


def _remove_again(zone_id: str, target_id: str, outcome: dict[str, Any]) -> dict[str, Any]:
    """Undo a create on one target; the outcome to record for it.

    A failed removal is returned, not raised: a revert that raised would
    leave the zone PENDING for good, and recovery finds the zone there.
    """
    zone = storage.get_zone_any(zone_id)
    if zone is None or not outcome.get("ok") or outcome.get("skipped"):
        return outcome
    if outcome.get("catalog") or outcome.get("current"):
        # One target cannot leave a catalog (the zone stays listed until it
        # is deleted), and a target that served the zone before is not ours
        # to empty.
        return outcome
    target = storage.find_target(target_id)
    if target is None or not _in_service(target):
        return outcome  # its zones are the retire-target job's to delete
    removal = _try_on_target(objects.Action.DELETE, target, zone)
    if not removal["ok"]:
        return {
            "ok": False,
            "error": f"created, and could not be removed again: {removal['error']}",
        }
    LOG.info("reverted: %s removed from target %s", zone.name, target.label)
    return {**outcome, "removed": True}


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


class ConsensusCheck(Task):
    """Fail the flow (so reverts run) when too few targets succeeded."""

    default_provides = "succeeded_targets"

    def __init__(self, target_ids: list[str], threshold: int, labels: dict[str, str]) -> None:
        super().__init__(name="consensus-check", requires=[target_result(t) for t in target_ids])
        self.target_ids = target_ids
        self.threshold = threshold
        self.labels = labels

    def execute(self, **results: dict[str, Any]) -> list[str]:
        # Targets that left the pool since the job was posted are not weighed.
        counted = [t for t in self.target_ids if not results[target_result(t)].get("retired")]
        succeeded = [t for t in counted if results[target_result(t)]["ok"]]
        if len(succeeded) * 100 < self.threshold * len(counted):
            failed = "; ".join(
                f"{self.labels.get(t, t)}: {results[target_result(t)]['error']}"
                for t in counted
                if t not in succeeded
            )
            raise exceptions.ConsensusFailure(
                f"{len(succeeded)} of {len(counted)} targets succeeded, below the "
                f"pool's threshold of {self.threshold}% ({failed})"
            )
        return succeeded


def _notify(zone_name: str, host: str, port: int, serial: int) -> None:
    try:
        query.send_notify(zone_name, host, port, serial=serial, timeout=CONF.flows.query_timeout)
    except (dns.exception.DNSException, OSError) as exc:
        # Not fatal: polling re-sends NOTIFY and decides whether it is served.
        LOG.info("NOTIFY of %s to %s:%s got no answer: %s", zone_name, host, port, exc)


class SendNotify(Task):
    """NOTIFY one nameserver so it fetches the new serial from mdns now."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(name=f"send-notify-{host}:{port}")
        self.host, self.port = host, port

    def execute(self, zone_name: str, serial: int, fence_token: int | None = None) -> None:
        fencing.check(fence_token)
        _notify(zone_name, self.host, self.port, serial)


class _Poll(Task):
    """Ask one nameserver for the zone's SOA until it serves ``serial`` or later
    (or, ``expect_removed``, until it refuses the zone).

    Returns what was seen rather than raising, so a lagging nameserver is
    recorded as such and weighed against the threshold.
    """

    def __init__(self, host: str, port: int, *, name: str) -> None:
        super().__init__(name=name, provides=served_result(host, port))
        self.host, self.port = host, port

    @_waits_for_database
    def _poll(
        self, zone_id: str, zone_name: str, serial: int, *, expect_removed: bool
    ) -> dict[str, Any]:
        deadline = time.monotonic() + CONF.flows.poll_timeout
        next_notify = time.monotonic() + CONF.flows.renotify_interval
        seen: int | None = None
        error = "no answer"
        while True:
            try:
                if expect_removed:
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
                if not expect_removed:
                    error += _why_not_served(zone_id, zone_name, serial, seen, self.host, self.port)
                return {
                    "ok": False,
                    "serial": seen,
                    "error": f"{self.host}:{self.port} after {CONF.flows.poll_timeout:g}s: {error}",
                }
            if now >= next_notify:
                state = storage.poll_state(zone_id, self.host, self.port)
                if state.zone_deleted and not expect_removed:
                    return {"ok": False, "serial": seen, "error": "zone deleted meanwhile"}
                if not state.nameserver_in_pool:
                    # A pool update removed it: not ours to wait for, nor to count.
                    return {"ok": True, "serial": seen, "error": None, "dropped": True}
                if not expect_removed:
                    _notify(zone_name, self.host, self.port, serial)
                next_notify = now + CONF.flows.renotify_interval
            time.sleep(CONF.flows.poll_interval)


def _why_not_served(
    zone_id: str, zone_name: str, serial: int, seen: int | None, host: str, port: int
) -> str:
    """Why a nameserver does not serve ``serial``, as clauses to add to a poll's error,
    or "" when nothing more is known.

    Two witnesses: the stored data, when it breaks a rule a nameserver loads
    zones by (:mod:`zoneflow.dns.rules`); and mdns, which records the
    transfers it served each target (:mod:`zoneflow.mdns.transfers`). A
    nameserver that refuses the data transfers it again and again and keeps
    its old serial; one that cannot reach mdns never transfers at all.
    """
    try:
        problem = _rule_problem(zone_id, zone_name)
        target = _target_at(zone_id, host, port)
        transfers = storage.list_transfers(zone_id) if target is not None else []
    except exceptions.ZoneflowError:
        return ""  # the poll's own error stands; the job's status write tells the rest
    refusal = (
        f"the nameserver refuses to load the zone's data (see its log): {problem}"
        if problem
        else ""
    )
    said = _transfer_witness(target, transfers, serial, seen, refusal) if target else None
    if said is not None:
        return f"; {said}"
    return f"; {refusal}" if refusal else ""


def _rule_problem(zone_id: str, zone_name: str) -> str | None:
    """The first rule the zone's stored data breaks, or None.

    Central refuses such data now, but a zone written before the rules, or
    changed behind central, still holds it.
    """
    recordsets = storage.list_recordsets(zone_id)
    problems = rules.problems(zone_name, [rules.Shape(rs.name, rs.type) for rs in recordsets])
    return problems[0].message if problems else None


def _target_at(zone_id: str, host: str, port: int) -> objects.PoolTarget | None:
    """The zone's pool target whose nameserver is ``host:port`` (options host and
    port), or None: a nameserver that is no target transfers from one, not from mdns."""
    zone = storage.get_zone_any(zone_id)
    if zone is None:
        return None
    for target in storage.get_pool(zone.pool_id).targets:
        if str(target.options.get("host")) == host and int(target.options.get("port", 53)) == port:
            return target
    return None


def _address(text: str) -> str:
    """An address in one spelling (2001:DB8::1 and 2001:db8:0::1 alike)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text  # a host name: compared as written


def _utcnow() -> datetime.datetime:
    """Now, as storage writes its times (UTC, naive)."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def _transfer_witness(
    target: objects.PoolTarget,
    transfers: list[objects.ZoneTransfer],
    serial: int,
    seen: int | None,
    refusal: str,
) -> str:
    """What mdns saw of ``target`` transferring the zone, as a clause of an error."""
    who = f"target {target.label}"
    source = _address(str(target.options.get("host")))
    last = next((t for t in transfers if _address(t.source) == source), None)
    if last is None:
        masters = ", ".join(str(m) for m in target.masters) or "its masters"
        said = (
            f"{who} never transferred the zone from mdns at {masters}: check its "
            "primaries, allow-transfer and TSIG key, and mdns's log for REFUSED transfers"
        )
        return f"{said}; {refusal}" if refusal else said
    ago = f"{max(0.0, (_utcnow() - last.last_at).total_seconds()):.0f} s ago"
    ended = "" if last.completed else ", which it closed before the end"
    if last.serial < serial:
        said = (
            f"{who} last transferred serial {last.serial} from mdns ({ago}{ended}), never "
            f"serial {serial}: it has not asked for it (check that NOTIFYs reach it)"
        )
        return f"{said}; {refusal}" if refusal else said
    serves = "does not serve the zone" if seen is None else f"still serves {seen}"
    times = "once" if last.count == 1 else f"{last.count} times"
    said = (
        f"{who} transferred serial {last.serial} from mdns {times} (last {ago}{ended}) but {serves}"
    )
    if not last.completed:
        return f"{said}; {refusal}" if refusal else said
    return (
        f"{said}: {refusal}"
        if refusal
        else f"{said}: the nameserver refuses the zone data; its log says why"
    )


class PollForSerial(_Poll):
    """Poll one nameserver for the serial, or for the zone's removal."""

    def __init__(self, host: str, port: int, *, expect_removed: bool = False) -> None:
        what = "removal" if expect_removed else "serial"
        super().__init__(host, port, name=f"poll-for-{what}-{host}:{port}")
        self.expect_removed = expect_removed

    def execute(self, zone_id: str, zone_name: str, serial: int) -> dict[str, Any]:
        return self._poll(zone_id, zone_name, serial, expect_removed=self.expect_removed)


# What a status writer returns when the zone has moved on to a later serial
# and its newer job decides the zone's status: the job's own end (zoneflow.jobs).
SUPERSEDED = jobs.Outcome.SUPERSEDED


class _StatusWriter(Task):
    """Write what the job achieved, in one transaction: per-target rows, then the zone's status.

    The zone is ACTIVE only if enough nameservers were seen serving the
    serial (the pool's threshold), never on the targets' word alone. It
    returns the status written: ACTIVE, DELETED or ERROR; PENDING when the
    zone is not ACTIVE yet because it moved on or its pool grew meanwhile
    (a newer job carries it); SUPERSEDED when the zone moved on before an
    ERROR could be written.
    """

    def __init__(
        self,
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
        self.target_ids = target_ids
        self.nameservers = nameservers
        self.target_addresses = target_addresses
        self.threshold = threshold

    @_waits_for_database
    def _write(
        self,
        action: str,
        zone_id: str,
        serial: int,
        results: dict[str, dict[str, Any]],
        taken_back: Collection[str] = (),
    ) -> str:
        served = {(h, p): results[served_result(h, p)] for h, p in self.nameservers}
        updates = [
            update
            for target_id in self.target_ids
            if target_id not in taken_back
            and (
                update := self._target_update(
                    action, serial, target_id, results[target_result(target_id)], served
                )
            )
            is not None
        ]
        # Nameservers removed from the pool while the job ran are not weighed.
        counted = {ns: seen for ns, seen in served.items() if not seen.get("dropped")}
        ok = [ns for ns, seen in counted.items() if seen["ok"]]
        if len(ok) * 100 >= self.threshold * len(counted):
            if action == objects.Action.DELETE:
                storage.finish_zone_delete(zone_id, serial=serial, targets=updates)
                return objects.Status.DELETED
            # ACTIVE only if the pool has not grown past this job's targets
            # and nameservers; else the zone goes to a recover-zone job.
            activated = storage.set_zone_status(
                zone_id,
                serial=serial,
                status=objects.Status.ACTIVE,
                action=objects.Action.NONE,
                covered_targets=self.target_ids,
                covered_nameservers=self.nameservers,
                pool_grown_job=objects.JobKind.RECOVER_ZONE,
                targets=updates,
            )
            return objects.Status.ACTIVE if activated else objects.Status.PENDING
        lagging = "; ".join(str(seen["error"]) for seen in counted.values() if not seen["ok"])
        error = (
            f"{len(ok)} of {len(counted)} nameservers serve serial {serial}, below the "
            f"pool's threshold of {self.threshold}% ({lagging})"
        )
        if not storage.set_zone_status(
            zone_id, serial=serial, status=objects.Status.ERROR, error=error, targets=updates
        ):
            # The zone has moved on to a later serial: its newer job decides it.
            return SUPERSEDED
        LOG.error("zone %s serial %s is ERROR: %s", zone_id, serial, error)
        return objects.Status.ERROR

    def _target_update(
        self,
        action: str,
        serial: int,
        target_id: str,
        outcome: dict[str, Any],
        served: dict[tuple[str, int], dict[str, Any]],
    ) -> tuple[str, int, str, str | None] | None:
        """What to record for one target: (target id, serial, status, error), or None."""
        if outcome.get("skipped") or outcome.get("unchanged"):
            # Deleted meanwhile (its delete job records the targets), or
            # already recorded as serving this serial and left alone.
            return None
        if not outcome["ok"]:
            return (target_id, 0, objects.Status.ERROR, outcome["error"])
        done = objects.Status.DELETED if action == objects.Action.DELETE else objects.Status.ACTIVE
        address = self.target_addresses.get(target_id)
        seen = served.get(address) if address else None
        if seen is None or seen.get("dropped"):
            # A target that is not also a pool nameserver (a hidden primary, the
            # fake backend): its own success is all there is to record.
            return (target_id, serial, done, None)
        if seen["ok"]:
            return (target_id, seen["serial"] or serial, done, None)
        return (target_id, seen["serial"] or 0, objects.Status.ERROR, seen["error"])


class UpdateStatus(_StatusWriter):
    """The status of a create, update or delete job."""

    def __init__(
        self,
        action: str,
        target_ids: list[str],
        nameservers: list[tuple[str, int]],
        target_addresses: dict[str, tuple[str, int]],
        threshold: int,
    ) -> None:
        super().__init__(target_ids, nameservers, target_addresses, threshold)
        self.action = action

    def execute(
        self,
        zone_id: str,
        serial: int,
        fence_token: int | None = None,
        taken_back: list[str] | None = None,
        **results: dict[str, Any],
    ) -> str:
        fencing.check(fence_token)
        # Targets the zone was taken back from: its delete job records them.
        return self._write(self.action, zone_id, serial, results, taken_back or ())


# --- recovery ----------------------------------------------------------------------


def _action_for(wanted: str) -> str:
    """The action a recovery carries out for a zone wanted ACTIVE or DELETED."""
    return objects.Action.DELETE if wanted == objects.Status.DELETED else objects.Action.UPDATE


def _served_serial(zone_name: str, host: str, port: int) -> int | None:
    """The serial a nameserver answers for a zone now; None if it has none or is silent."""
    try:
        return query.soa_serial(zone_name, host, port, timeout=CONF.flows.query_timeout)
    except (dns.exception.DNSException, OSError):
        return None


class BeginRecovery(_Begin):
    """First task of recover-zone: the zone's name, and the state every target
    should be brought to: DELETED for a zone whose action is DELETE, else ACTIVE.
    """

    default_provides = ("zone_name", "wanted")

    @_waits_for_database
    def execute(self, zone_id: str, serial: int, fence_token: int | None = None) -> tuple[str, str]:
        fencing.check(fence_token)
        zone = storage.get_zone_any(zone_id)
        if zone is None:
            raise exceptions.ZoneNotFound(f"zone {zone_id} no longer exists")
        gone = zone.action == objects.Action.DELETE or storage.zone_is_deleted(zone_id)
        wanted = objects.Status.DELETED if gone else objects.Status.ACTIVE
        LOG.info("recovery of %s at serial %s begins: wanted %s", zone.name, serial, wanted)
        return zone.name, wanted


class RecoverOnTarget(Task):
    """Bring one target to the zone's wanted state, touching it only if it is not there.

    Wanted ACTIVE: a target whose nameserver answers the serial already (or,
    with no nameserver to ask, whose row records it) is left alone; one that
    answers an older serial gets an update and a NOTIFY; one that answers
    nothing gets a create. Wanted DELETED: the zone is deleted on every target
    (deletes are idempotent). Revert records where each target was left and
    undoes nothing, except for a zone never made ACTIVE (action CREATE): the
    creates this job made are undone, as a failed create-zone's are.
    """

    def __init__(self, target_id: str) -> None:
        super().__init__(
            name=f"recover-zone-on-target-{target_id}", provides=target_result(target_id)
        )
        self.target_id = target_id

    @_waits_for_database
    def execute(
        self, zone_id: str, serial: int, wanted: str, fence_token: int | None = None
    ) -> dict[str, Any]:
        fencing.check(fence_token)
        zone = storage.get_zone_any(zone_id)
        if zone is None:
            raise exceptions.ZoneNotFound(f"zone {zone_id} no longer exists")
        target = storage.find_target(self.target_id)
        if target is None or not _in_service(target):
            return _retired(zone, self.target_id)
        pool = storage.get_pool(target.pool_id)
        if wanted == objects.Status.DELETED:
            if pool.provisioning == objects.CATALOG:
                return _through_catalog(pool, target)
            return _try_on_target(objects.Action.DELETE, target, zone)
        if storage.zone_is_deleted(zone_id):
            return {"ok": True, "error": None, "skipped": True}

        row = storage.get_target_status(zone_id, self.target_id)
        recorded = row is not None and row.status == objects.Status.ACTIVE and row.serial >= serial
        host = target.options.get("host")
        address = (str(host), int(target.options.get("port", 53))) if host is not None else None
        served = _served_serial(zone.name, *address) if address else None
        current = served is not None and served >= serial if address else recorded
        if current:
            LOG.info("%s already serves %s serial %s: left alone", target.label, zone.name, serial)
            return {
                "ok": True,
                "error": None,
                "skipped": False,
                "current": True,
                "serial": served or serial,
                "unchanged": recorded,
            }
        if pool.provisioning == objects.CATALOG:
            return _through_catalog(pool, target)
        if address:
            has_zone = served is not None
        else:
            has_zone = row is not None and row.serial > 0 and row.status != objects.Status.DELETED
        action = objects.Action.UPDATE if has_zone else objects.Action.CREATE
        LOG.info("%s: %s of %s to serial %s", target.label, action, zone.name, serial)
        outcome = _try_on_target(action, target, zone)
        if outcome["ok"] and action == objects.Action.UPDATE and address:
            # A target that has the zone fetches the serial now, not at its refresh.
            _notify(zone.name, *address, serial)
        return {**outcome, "action": action}

    @_waits_for_database
    def revert(
        self,
        zone_id: str,
        serial: int,
        wanted: str,
        result: Any,
        flow_failures: dict[str, tf_failure.Failure],
        fence_token: int | None = None,
        **_: Any,
    ) -> None:
        if fencing.lost(fence_token):
            return  # the job is another conductor's now: undoing would undo its work
        if not isinstance(result, dict):
            return
        action, outcome = _action_for(wanted), result
        zone = storage.get_zone_any(zone_id)
        if zone is not None and zone.action == objects.Action.CREATE:
            # A zone never made ACTIVE is recovered as a create, and below the
            # threshold undone as one: off the targets this job put it on.
            action = objects.Action.CREATE
            if result.get("action") == objects.Action.CREATE:
                outcome = _remove_again(zone_id, self.target_id, result)
        _record_reverted(zone_id, serial, self.target_id, action, outcome, _reason(flow_failures))


class PollForWantedState(_Poll):
    """Poll one nameserver for the serial, or for the zone's removal if it is wanted DELETED."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port, name=f"poll-for-wanted-state-{host}:{port}")

    def execute(self, zone_id: str, zone_name: str, serial: int, wanted: str) -> dict[str, Any]:
        return self._poll(
            zone_id, zone_name, serial, expect_removed=wanted == objects.Status.DELETED
        )


class RecoverStatus(_StatusWriter):
    """The status of a recover-zone job: ACTIVE, or the delete finished, or ERROR."""

    def execute(
        self,
        zone_id: str,
        serial: int,
        wanted: str,
        fence_token: int | None = None,
        **results: dict[str, Any],
    ) -> str:
        fencing.check(fence_token)
        return self._write(_action_for(wanted), zone_id, serial, results)
