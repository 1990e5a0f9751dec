"""The pool's threshold, and the consensus check that weighs the targets against it."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from zoneflow import exceptions
from zoneflow.flows.base import Task, waits_for_database
from zoneflow.flows.on_target import target_outcomes
from zoneflow.jobs import steps
from zoneflow.jobs.outcomes import TargetOutcome
from zoneflow.storage import health as stored_health


def meets_threshold(succeeded: int, counted: int, threshold: int) -> bool:
    """Whether ``succeeded`` of ``counted`` reach ``threshold`` percent (none counted: yes).

    The one place both weighings use: the targets (consensus) and the
    nameservers seen serving the serial (the status write).
    """
    return succeeded * 100 >= threshold * counted


class ConsensusCheck(Task):
    """Fail the flow (so reverts run) when too few targets succeeded."""

    default_provides = "succeeded_targets"

    def __init__(self, target_ids: list[str], threshold: int, labels: dict[str, str]) -> None:
        super().__init__(steps.CONSENSUS, requires=[steps.target_result(t) for t in target_ids])
        self.target_ids = target_ids
        self.threshold = threshold
        self.labels = labels

    # It reads which targets are in maintenance: a database blip must not revert the job.
    @waits_for_database
    def execute(self, **results: Any) -> list[str]:
        outcomes = target_outcomes(results, self.target_ids)
        succeeded, below = weigh(
            outcomes, stored_health.not_counted(self.target_ids), self.threshold, self.labels
        )
        if below is not None:
            raise exceptions.ConsensusFailure(below)
        return succeeded


def weigh(
    outcomes: dict[str, TargetOutcome],
    left_out: Collection[str],
    threshold: int,
    labels: dict[str, str],
) -> tuple[list[str], str | None]:
    """The targets that succeeded, and why they fall below ``threshold`` (None: they do not).

    Targets that left the pool since the job was posted are not weighed, nor
    targets in maintenance (or catching up after it), ``left_out``: read now,
    not when the job was posted, since an operator may have just turned it on.
    """
    counted = [t for t in outcomes if not outcomes[t].retired and t not in left_out]
    succeeded = [t for t in counted if outcomes[t].ok]
    if meets_threshold(len(succeeded), len(counted), threshold):
        return succeeded, None
    failed = "; ".join(
        f"{labels.get(t, t)}: {outcomes[t].error}" for t in counted if t not in succeeded
    )
    return succeeded, (
        f"{len(succeeded)} of {len(counted)} targets succeeded, below the "
        f"pool's threshold of {threshold}% ({failed})"
    )
