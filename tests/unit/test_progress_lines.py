"""``--progress`` (zoneflow.engine.progress): each finished step said once, however the
CLI's reads of the logbook fall between the conductor's writes."""

from __future__ import annotations

from typing import Any

import pytest
from taskflow import states

from zoneflow.engine import progress
from zoneflow.jobs import records, steps
from zoneflow.jobs.steps import StepKind

CONSENSUS = steps.Step(StepKind.CONSENSUS)
FAILED = "1 of 2 targets succeeded, below the pool's threshold of 100%"


def follow_through(monkeypatch: pytest.MonkeyPatch, seen: list[str]) -> list[str]:
    """The lines a Progress says when each read of the logbook finds the consensus
    step in the next of ``seen``'s states."""
    reads = iter(seen)

    def info(_book: Any, *, with_atoms: bool) -> records.JobInfo:
        atom = records.AtomInfo(CONSENSUS.name, next(reads), "EXECUTE", None, FAILED)
        return records.JobInfo(
            "job", "create-zone", "zone", "broken.example.", 1, "RUNNING", None, None, (atom,)
        )

    monkeypatch.setattr(progress.records, "logbook", lambda _persistence, _job: None)
    monkeypatch.setattr(progress.records, "info", info)
    follower = progress.Progress(None, labels={})
    follower.job_id = "job"
    follower._steps = {CONSENSUS.name: CONSENSUS}  # noqa: SLF001 - the flow's steps, as read
    said: list[str] = []
    for _ in seen:
        follower.follow("broken.example.", 1, lambda line: said.append(line.split("s  ", 1)[1]))
    return said


def test_a_failed_step_read_before_and_after_its_revert_is_said_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    said = follow_through(monkeypatch, [states.RUNNING, states.FAILURE, states.REVERTED])

    assert said == [f"consensus: {FAILED}"]


def test_a_failed_step_read_once_reverted_is_said_once(monkeypatch: pytest.MonkeyPatch) -> None:
    assert follow_through(monkeypatch, [states.REVERTED]) == [f"consensus: {FAILED}"]
