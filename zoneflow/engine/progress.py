"""A job's progress as it happens, for ``--progress`` on the CLI.

The conductor's engine records every step of a job in the job's logbook as
the step changes state (TaskFlow's storage listens to the engine; see
taskflow_adapter/persistence.py). A CLI in another process follows that record:
:class:`Progress` reads it again and again and turns each step that has
newly finished into a line saying what it did, with the time since the
command started. Nothing extra is written for it, so following a job costs
the conductor nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from taskflow import states

from zoneflow import exceptions, jobs, objects
from zoneflow.jobs import outcomes, records, steps
from zoneflow.jobs.steps import StepKind

_DONE = frozenset({states.SUCCESS, states.FAILURE, states.REVERTED, states.REVERT_FAILURE})


#: The kinds of job a zone's change may have: every kind but a retired target's
#: (the kinds of zoneflow.flows.FACTORIES, named here without loading the flows
#: and TaskFlow's graphs, which a CLI waiting on a change has no use for).
JOB_KINDS = tuple(kind for kind in objects.JobKind if kind is not objects.JobKind.RETIRE_TARGET)


class Progress:
    """Lines saying what a job's steps did, each once, as they finish."""

    def __init__(self, persistence: Any, *, labels: dict[str, str]) -> None:
        self.persistence = persistence
        self.labels = labels  # target id -> what to call it
        self.started = time.monotonic()
        self.job_id: str | None = None
        self._reported: dict[str, str] = {}
        # Atom name -> the step it is, from the job's flow (built once).
        self._steps: dict[str, steps.Step] | None = None

    def follow(self, zone_name: str, serial: int, say: Callable[[str], None]) -> str | None:
        """Report the steps that finished since the last call (finding the job first);
        return the job's state, or None while it is not posted (or once purged)."""
        if self.job_id is None:
            self.job_id = jobs.find_job(self.persistence, zone_name, serial, JOB_KINDS)
            if self.job_id is None:
                return None  # not posted yet
            say(self._line(f"job {self.job_id}"))
        try:
            book = records.logbook(self.persistence, self.job_id)
        except exceptions.JobNotFound:
            return None  # purged: the zone's status still tells the end
        info = records.info(book, with_atoms=True)
        if self._steps is None:
            details = list(book)
            self._steps = steps.steps_of(details[0]) if details else {}
        for atom in info.atoms:
            before = self._reported.get(atom.name)
            if atom.state not in _DONE or before == atom.state:
                continue
            self._reported[atom.name] = atom.state
            if before == states.FAILURE and atom.state == states.REVERTED:
                # A failed step reverted afterwards: its failure, already said, was the
                # news (read between the two, it was said twice on a busy machine).
                continue
            text = self._describe(atom)
            if text is not None:
                say(self._line(text))
        return info.state

    def _line(self, text: str) -> str:
        return f"{time.monotonic() - self.started:7.2f}s  {text}"

    def _describe(self, atom: jobs.AtomInfo) -> str | None:
        step = (self._steps or {}).get(atom.name)
        kind = step.kind if step is not None else None
        if kind == StepKind.BEGIN:
            return None  # its revert puts the zone in ERROR: the status line says so
        if atom.state == states.SUCCESS and kind == StepKind.NOTIFY:
            return None  # says nothing a user waits for
        if step is not None and kind == StepKind.ON_TARGET:
            label = self.labels.get(step.target_id, step.target_id)
            return f"target {label}: {_target(step.verb, atom)}"
        if step is not None and kind == StepKind.POLL:
            server = step.nameserver
            seen = outcomes.Served.of(atom.result)
            if atom.state == states.SUCCESS and seen is not None and seen.ok:
                return f"nameserver {server}: " + (
                    "no longer serves the zone"
                    if seen.serial is None
                    else f"serves serial {seen.serial}"
                )
            error = seen.error if seen is not None else None
            return f"nameserver {server}: {atom.error or error or atom.state}"
        if kind == StepKind.TAKE_BACK and atom.state == states.SUCCESS:
            if not atom.result:
                return None
            taken = ", ".join(self.labels.get(t, t) for t in atom.result)
            return f"the zone's delete was asked meanwhile: taken back from {taken}"
        if kind == StepKind.CONSENSUS:
            if atom.state == states.SUCCESS:
                return f"consensus: {len(atom.result or [])} targets succeeded"
            return f"consensus: {atom.error or atom.state}"
        if kind == StepKind.STATUS and atom.state == states.SUCCESS:
            return f"status: {atom.result}"
        if atom.state == states.SUCCESS:
            return None
        return f"{atom.name}: {atom.state}" + (f": {atom.error}" if atom.error else "")


def _target(action: str, atom: jobs.AtomInfo) -> str:
    outcome = outcomes.TargetOutcome.of(atom.result) or outcomes.TargetOutcome(ok=False)
    failed = atom.state not in (states.SUCCESS, states.REVERTED) or not outcome.ok
    if failed:
        return f"failed: {atom.error or outcome.error or atom.state}"
    if atom.state == states.REVERTED:
        # What the revert did (see ZoneActionOnTarget.revert); `zone status` has the details.
        return "created, then removed again" if action == "create" else "kept, not undone"
    if outcome.skipped:
        return "skipped (the zone was deleted meanwhile)"
    if outcome.current or outcome.unchanged:
        return "already current, left alone"
    if outcome.catalog:
        return "catalog notified"
    done = {"create": "created", "update": "updated", "delete": "deleted"}
    return done.get(action, f"{action} done")
