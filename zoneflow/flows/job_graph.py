"""A job's flow drawn: rebuilt from its logbook the way the conductor runs it.

The flow is rebuilt from the factory and arguments in the job's logbook,
each atom coloured by the state persisted for it (drawn by render.py).
"""

from __future__ import annotations

from typing import Any

from taskflow import engines

from zoneflow import exceptions
from zoneflow.flows import render
from zoneflow.jobs import records as jobs
from zoneflow.jobs import steps


def to_dot(persistence: Any, job_id: str) -> str:
    """The job's flow as Graphviz DOT, each atom coloured by its persisted state."""
    book = jobs.logbook(persistence, job_id)
    job = jobs.info(book, with_atoms=True)
    details = list(book)
    if not details:
        raise exceptions.FlowNotFound(f"job {job_id} has no flow recorded in its logbook")
    try:
        flow = engines.flow_from_detail(details[0])
    except (ValueError, ImportError, TypeError) as exc:
        raise exceptions.FlowNotFound(
            f"the flow of job {job_id} cannot be rebuilt from its logbook "
            f"(was it posted by another zoneflow version?): {exc}"
        ) from exc
    factory_kwargs = details[0].meta["factory"].get("kwargs", {})
    labels = {t["id"]: t["label"] for t in factory_kwargs.get("targets", [])}
    targets = {
        a.name: labels.get(a.step.target_id, a.step.target_id)
        for a in steps.atoms(flow)
        if isinstance(getattr(a, "step", None), steps.Step)
        and a.step.kind == steps.StepKind.ON_TARGET
    }
    runs = {}
    for atom in job.atoms:
        note = atom.error or (f"target {targets[atom.name]}" if atom.name in targets else "")
        runs[atom.name] = render.AtomRun(atom.state, failed=atom.error is not None, note=note)
    outcome = f"{job.state} (failed)" if job.failed else job.state
    if len(job.zones) > 1:  # a batch: its first zone, and how many more it carries
        about = f"{job.zone_name} and {len(job.zones) - 1} more zones"
    else:
        about = f"{job.zone_name} serial {job.serial}"
    title = f"{job.kind} {about}: {outcome}\njob {job.id}"
    ended = render.JobRun(job.state, failed=job.failed, reason=job.error)
    return render.to_dot(flow, runs, title=title, job=ended)
