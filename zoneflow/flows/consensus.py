"""The pool's threshold, and the consensus check that weighs the targets against it."""

from __future__ import annotations

from typing import Any

from zoneflow import exceptions
from zoneflow.flows.base import Task, waits_for_database
from zoneflow.flows.on_target import target_outcomes
from zoneflow.jobs import steps
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
        # Targets that left the pool since the job was posted are not weighed, nor
        # targets in maintenance (or catching up after it): read now, not when
        # the job was posted, since an operator may have just turned it on.
        left_out = stored_health.not_counted(self.target_ids)
        counted = [t for t in self.target_ids if not outcomes[t].retired and t not in left_out]
        succeeded = [t for t in counted if outcomes[t].ok]
        if not meets_threshold(len(succeeded), len(counted), self.threshold):
            failed = "; ".join(
                f"{self.labels.get(t, t)}: {outcomes[t].error}"
                for t in counted
                if t not in succeeded
            )
            raise exceptions.ConsensusFailure(
                f"{len(succeeded)} of {len(counted)} targets succeeded, below the "
                f"pool's threshold of {self.threshold}% ({failed})"
            )
        return succeeded
