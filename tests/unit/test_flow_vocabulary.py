"""A job's flow speaks one vocabulary: step names built once, outcomes stored as dicts.

A resumed job finds its atoms by name and reads the results its last run
stored, maybe written by an older zoneflow: these tests pin both.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator

from oslo_serialization import jsonutils
from taskflow import engines
from taskflow import flow as flow_base
from taskflow.persistence import models

from zoneflow import objects
from zoneflow.engine import progress
from zoneflow.flows import retire_target, zone
from zoneflow.flows.consensus import meets_threshold
from zoneflow.flows.propagation import PollForSerial
from zoneflow.jobs import steps
from zoneflow.jobs.outcomes import Served, TargetOutcome, failure

POOL = {
    "targets": [
        {"id": "t1", "label": "bind1", "host": "192.0.2.1", "port": 53},
        {"id": "t2", "label": "bind2", "host": "192.0.2.2", "port": 5353},
    ],
    "nameservers": [["192.0.2.1", 53], ["192.0.2.2", 5353]],
    "also_notifies": [],
    "threshold": 100,
}


def _detail(factory: object, kwargs: dict[str, object]) -> models.FlowDetail:
    detail = models.FlowDetail("job", "uuid-of-the-flow")
    engines.save_factory_details(detail, factory, [], kwargs)
    return detail


def test_an_update_zone_flow_keeps_the_atom_names_jobs_were_persisted_under() -> None:
    found = steps.steps_of(_detail(zone.update_zone_flow, POOL))

    assert sorted(found) == [
        "begin",
        "consensus-check",
        "poll-for-serial-192.0.2.1:53",
        "poll-for-serial-192.0.2.2:5353",
        "take-back-if-deleted",
        "update-status",
        "update-zone-on-target-t1",
        "update-zone-on-target-t2",
    ]
    on_t2 = found["update-zone-on-target-t2"]
    assert (on_t2.kind, on_t2.verb, on_t2.target_id) == (steps.StepKind.ON_TARGET, "update", "t2")
    poll = found["poll-for-serial-192.0.2.2:5353"]
    assert (poll.kind, poll.nameserver) == (steps.StepKind.POLL, "192.0.2.2:5353")


def test_only_an_updates_polls_notify_their_nameservers_first() -> None:
    def atoms(flow: flow_base.Flow) -> Iterator[object]:
        for node, _ in flow.iter_nodes():
            yield from atoms(node) if isinstance(node, flow_base.Flow) else [node]

    def polls(factory: Callable[..., flow_base.Flow]) -> dict[str, bool]:
        found = atoms(factory(**POOL))
        return {a.name: a.notify_first for a in found if isinstance(a, PollForSerial)}

    names = ["poll-for-serial-192.0.2.1:53", "poll-for-serial-192.0.2.2:5353"]
    assert polls(zone.update_zone_flow) == dict.fromkeys(names, True)
    assert polls(zone.create_zone_flow) == dict.fromkeys(names, False)
    removals = ["poll-for-removal-192.0.2.1:53", "poll-for-removal-192.0.2.2:5353"]
    assert polls(zone.delete_zone_flow) == dict.fromkeys(removals, False)


def test_recover_and_retire_flows_keep_their_atom_names() -> None:
    recover = steps.steps_of(_detail(zone.recover_zone_flow, POOL))
    retire = steps.steps_of(_detail(retire_target.retire_target_flow, {}))

    assert "recover-zone-on-target-t1" in recover
    assert "poll-for-wanted-state-192.0.2.1:53" in recover
    assert sorted(retire) == ["drain-target", "drop-target"]


def test_a_flow_that_cannot_be_rebuilt_has_no_steps_rather_than_an_error() -> None:
    detail = models.FlowDetail("job", "uuid-of-the-flow")
    detail.meta = {"factory": {"name": "zoneflow.flows.gone.flow", "args": [], "kwargs": {}}}

    assert steps.steps_of(detail) == {}


def test_logbook_names_are_the_ones_progress_looks_for() -> None:
    assert (
        steps.zone_logbook(objects.JobKind.CREATE_ZONE, "example.org.", 7)
        == "create-zone example.org. serial 7"
    )


def test_an_outcome_survives_the_logbook_s_json() -> None:
    outcome = TargetOutcome(ok=True, current=True, serial=2024010101, unchanged=True)
    stored = jsonutils.loads(jsonutils.dumps(outcome.to_result()))

    assert TargetOutcome.of(stored) == outcome
    # One key a field, the subclass's own fields included, as job show reads them.
    assert stored == dataclasses.asdict(outcome)
    assert Served.of(json.loads(json.dumps(Served(ok=False, error="late").to_result()))) == Served(
        ok=False, error="late"
    )


def test_an_outcome_stored_with_fewer_keys_reads_back_with_defaults() -> None:
    # As a zoneflow before these dataclasses stored a retired target's outcome.
    older = {"ok": True, "error": None, "skipped": True, "retired": True}

    assert TargetOutcome.of(older) == TargetOutcome(ok=True, skipped=True, retired=True)
    assert TargetOutcome.of(None) is None  # the task raised: no outcome


def test_a_failed_outcome_says_why() -> None:
    assert failure(TargetOutcome(ok=False, error="refused").to_result()) == "refused"
    assert failure(Served(ok=True, serial=3).to_result()) is None
    assert failure("ACTIVE") is None


def test_the_threshold_counts_a_share_of_those_counted() -> None:
    assert meets_threshold(2, 3, 66)
    assert not meets_threshold(1, 2, 51)
    assert meets_threshold(0, 0, 100)  # none counted: nothing below the threshold


def test_the_job_kinds_a_wait_looks_for_are_the_zone_flows_kinds() -> None:
    # progress names them without loading the flows; a new kind of zone flow
    # must be found by `--wait` too.
    assert set(progress.JOB_KINDS) == set(zone.FACTORIES)
