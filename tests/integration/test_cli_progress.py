"""``--progress``: each step of the job printed on stderr as it finishes, stdout unchanged."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import load_pool
from tests.integration.test_cli import run
from zoneflow import objects
from zoneflow.conductor import daemon
from zoneflow.storage import reads as stored_reads


def _steps(err: str) -> list[str]:
    """The progress lines without their elapsed-time column."""
    return [line.split("s  ", 1)[1] for line in err.splitlines() if "s  " in line]


def test_progress_shows_each_target_the_consensus_and_the_status(
    capsys: pytest.CaptureFixture[str], conductor: daemon.Conductor
) -> None:
    load_pool({}, {})
    code, out, err = run(
        capsys,
        "--json",
        "zone",
        "create",
        "progress.example.",
        "--email",
        "h@example.com",
        "--progress",
    )
    assert code == 0, err
    zone = json.loads(out)  # stdout is still the zone, and only the zone
    assert zone["status"] == objects.Status.ACTIVE
    steps = _steps(err)
    assert steps[0].startswith("job ")
    assert sorted(s for s in steps if s.startswith("target ")) == [
        "target fake1: created",
        "target fake2: created",
    ]
    assert steps[-2:] == ["consensus: 2 targets succeeded", "status: ACTIVE"]
    assert [s for s in steps if s.startswith("target ")] == steps[1:3]  # before the consensus


def test_progress_shows_why_a_change_failed_and_what_was_undone(
    capsys: pytest.CaptureFixture[str], conductor: daemon.Conductor
) -> None:
    load_pool({}, {"fail": "create"}, threshold=100)
    code, _out, err = run(
        capsys, "zone", "create", "broken.example.", "--email", "h@example.com", "--progress"
    )
    assert code == 1
    steps = _steps(err)
    assert "target fake2: failed: target fake2: injected failure of create" in steps
    (consensus,) = [s for s in steps if s.startswith("consensus:")]
    assert "1 of 2 targets succeeded, below the pool's threshold of 100%" in consensus
    # The create on the healthy target was undone, and the line says so.
    assert "target fake1: created, then removed again" in steps
    assert stored_reads.get_zone("broken.example.").status == objects.Status.ERROR
