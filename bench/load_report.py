"""bench/load.py's report: latency tables per action and per ramp step, the knee, CPU
per change per process, the goals, and the PNG plots (doc/images/load-*.png).

Functions of a finished run (bench/load.py's Run and Change); nothing here
drives load or asks a server.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from bench.load_floor import describe_cpu  # noqa: E402
from zoneflow.local.bind9 import RECOMMENDED_OPTIONS  # noqa: E402

if TYPE_CHECKING:
    from bench.load import ActiveWatch, Change, Run

# The Designate deployment's hourly counts (creates, deletes, updates), as shares.
#: How the report says the targets learned of zones (bench/load.py --provisioning).
PROVISIONING = {
    "rndc": "zones added and deleted through rndc",
    "catalog": "zones added and deleted through the pool's catalog zone, which each consumes",
}
DESIGNATE_MIX = {"create": 6413, "delete": 2077, "update": 23750}
# Its published figures at scale: the average seconds until served, per action,
# and the share served within five minutes.
DESIGNATE_AVERAGE = {"create": 8.0, "delete": 4.0, "update": 5.0}
#: A job's phases, in the order they end: its first step begun (it was claimed),
#: its begin, its last step on a target, its consensus, its first and its last
#: nameserver's poll, its status written. Each ends when the last of its steps
#: succeeds, as the task events the conductor publishes tell it.
PHASES = ("claimed", "begin", "on-target", "consensus", "first poll", "last poll", "status")
DESIGNATE_WITHIN = 0.9999
WITHIN = 300.0
ACTIONS = ("create", "update", "delete")
# The knee: the offered load at which the p99 of change → served by all passes this.
KNEE = 2.0
# The goal: ACTIVE reported within this of every target serving the change.
ACTIVE_GOAL = 0.05
IMAGES = ROOT / "doc" / "images"


def latencies(changes: Sequence[Change], action: str | None = None) -> list[float]:
    return [
        c.latency
        for c in changes
        if c.latency is not None and not c.superseded and action in (None, c.action)
    ]


def _seconds(samples: list[float], pct: float) -> str:
    return f"{report.percentile(samples, pct):.2f}" if samples else "–"


def within_share(changes: Sequence[Change]) -> str:
    """The changes served by every target within WITHIN of their arrival, of those the API
    accepted or never answered (not sent, under overload, or no answer in time)."""
    counted = [c for c in changes if c.status in (202, None) and not c.superseded]
    if not counted:
        return "–"
    served = sum(1 for c in counted if c.latency is not None and c.latency <= WITHIN)
    return f"{100 * served / len(counted):.2f} % ({served}/{len(counted)})"


def action_table(run: Run, floors: dict[str, list[float]]) -> str:
    lines = [
        "| action | arrived | accepted | API answered p50 / p99 (s) | served by all: p50 "
        "| p90 | p99 | max | mean (s) | served after the API's answer: p50 / p99 (s) "
        "| within 5 min | Designate: mean (s), within 5 min |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for action in ACTIONS:
        changes = [c for c in run.changes if c.action == action]
        served = latencies(changes)
        answered = [c.answered - c.due for c in changes if c.answered is not None]
        # Past the API: what propagation alone took, the API's own queue aside.
        after = [
            c.served - c.answered
            for c in changes
            if c.served is not None and c.answered is not None and not c.superseded
        ]
        mean = f"{sum(served) / len(served):.2f}" if served else "–"
        lines.append(
            f"| {action} | {len(changes)} | {sum(c.accepted for c in changes)} "
            f"| {_seconds(answered, 50)} / {_seconds(answered, 99)} "
            f"| {_seconds(served, 50)} | {_seconds(served, 90)} | {_seconds(served, 99)} "
            f"| {_seconds(served, 100)} | {mean} | {_seconds(after, 50)} / {_seconds(after, 99)} "
            f"| {within_share(changes)} | {DESIGNATE_AVERAGE[action]:g}, "
            f"{100 * DESIGNATE_WITHIN:g} % |"
        )
    for label, samples in (
        ("BIND9 alone: `rndc addzone` → served", floors.get("addzone", [])),
        ("BIND9 alone: NOTIFY → new serial served", floors.get("notify", [])),
        (
            "BIND9 alone, its default `serial-query-rate` (20): NOTIFY → new serial served",
            floors.get("notify-defaults", []),
        ),
    ):
        if not samples:
            continue
        lines.append(
            f"| {label} | {len(samples)} | – | – | {_seconds(samples, 50)} "
            f"| {_seconds(samples, 90)} | {_seconds(samples, 99)} | {_seconds(samples, 100)} "
            f"| {sum(samples) / max(1, len(samples)):.2f} | – | – | – |"
        )
    return "\n".join(lines) + "\n"


def active_table(runs: Sequence[tuple[str, Run]]) -> str:
    lines = [
        "| run | changes | ACTIVE − served: p50 | p99 (s) | within 50 ms | ACTIVE while a target "
        "was seen without it | never reported |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, run in runs:
        counted = [c for c in run.changes if c.served is not None and not c.superseded]
        gaps = [c.active - c.served for c in counted if c.active is not None and c.served]
        early = sum(1 for c in counted if c.active is not None and c.active < (c.before or 0.0))
        near = sum(1 for gap in gaps if gap <= ACTIVE_GOAL)
        lines.append(
            f"| {label} | {len(counted)} | {_seconds(gaps, 50)} | {_seconds(gaps, 99)} "
            f"| {100 * near / max(1, len(gaps)):.1f} % | {early} "
            f"| {sum(1 for c in counted if c.active is None)} |"
        )
    return "\n".join(lines) + "\n"


def refusals(runs: Sequence[tuple[str, Run]]) -> str:
    """The requests the API refused or never answered, by reason (none, at best)."""
    reasons: dict[str, int] = {}
    for label, run in runs:
        for change in run.changes:
            if not change.accepted:
                reason = f"{label}, {change.action}: {change.status or ''} {change.error}"
                reasons[reason] = reasons.get(reason, 0) + 1
    if not reasons:
        return "\nThe API accepted every request (202).\n"
    return (
        "\nRefused or unanswered requests: "
        + "; ".join(f"{reason} ×{count}" for reason, count in sorted(reasons.items()))
        + ".\n"
    )


def goals(steady: Run) -> str:
    """The issue's goals for the steady run, beside what was measured."""
    updates = latencies(steady.changes, "update")
    return (
        "\nThe issue's goal at a steady 20 operations/s on 8 BIND9: an update served by all "
        f"within 0.4 s (p50) and 1 s (p99); measured here {_seconds(updates, 50)} s and "
        f"{_seconds(updates, 99)} s.\n"
    )


def ramp_table(run: Run) -> str:
    lines = [
        "| offered (changes/s) | arrived | accepted/s | API answered p50 / p99 (s) "
        "| served by all: p50 | p90 | p99 | max (s) | within 5 min "
        "| sweeper resolution p90 (s), changes found by asking |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for index, step in enumerate(run.steps[: len(run.cpu)]):
        changes = run.of_step(index)
        served = latencies(changes)
        answered = [c.answered - c.due for c in changes if c.answered is not None]
        # A change found through a NOTIFY is timed to about a millisecond; one found by
        # asking, to the time since the last answer without it.
        resolution = [
            c.served - c.before for c in changes if c.served and c.before and not c.by_notify
        ]
        lines.append(
            f"| {step.rate:g} | {len(changes)} "
            f"| {sum(c.accepted for c in changes) / step.seconds:.1f} "
            f"| {_seconds(answered, 50)} / {_seconds(answered, 99)} "
            f"| {_seconds(served, 50)} | {_seconds(served, 90)} | {_seconds(served, 99)} "
            f"| {_seconds(served, 100)} | {within_share(changes)} | {_seconds(resolution, 90)} |"
        )
    return "\n".join(lines) + "\n"


def knee(run: Run) -> str:
    for index, step in enumerate(run.steps[: len(run.cpu)]):
        served = latencies(run.of_step(index))
        unserved = [c for c in run.of_step(index) if c.accepted and c.served is None]
        if unserved or (served and report.percentile(served, 99) > KNEE):
            below = f" (p99 ≤ {KNEE:g} s at {run.steps[index - 1].rate:g})" if index else ""
            return f"the knee lies below {step.rate:g} changes/s{below}"
    return f"no knee up to {run.steps[len(run.cpu) - 1].rate:g} changes/s"


def cpu_table(columns: Sequence[tuple[str, dict[str, float], int]]) -> str:
    """Milliseconds of CPU per accepted change, by process, for each (label, used, changes)."""
    names = list(columns[0][1])
    zoneflow = [n for n in names if n.startswith("zoneflow ")]
    lines = [
        "| process | " + " | ".join(label for label, _, _ in columns) + " |",
        "| --- |" + " ---: |" * len(columns),
    ]
    for name in [*names, "zoneflow, all its processes"]:
        cells = []
        for _, used, changes in columns:
            seconds = sum(used.get(n, 0.0) for n in zoneflow) if name not in used else used[name]
            cells.append(f"{1000 * seconds / max(1, changes):.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(steady: Run | None, ramp: Run | None, floors: dict[str, list[float]]) -> list[str]:
    """The PNGs in doc/images/: the CDF of each action's latency (steady run), and the
    latency against the offered load (ramp). Their paths, relative to doc/."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    IMAGES.mkdir(parents=True, exist_ok=True)
    written = []
    if steady is not None:
        figure, axes = plt.subplots(figsize=(7, 4.2))
        for action in ACTIONS:
            _cdf(axes, latencies(steady.changes, action), f"{action} (zoneflow)", "-")
        _cdf(axes, floors.get("addzone", []), "BIND9 alone: rndc addzone", ":")
        _cdf(axes, floors.get("notify", []), "BIND9 alone: NOTIFY", ":")
        _cdf(axes, floors.get("notify-defaults", []), "BIND9 alone, its defaults: NOTIFY", ":")
        axes.set_xscale("log")
        axes.set_xlabel("seconds from the request's arrival until every target serves it")
        axes.set_ylabel("share of changes")
        axes.set_title(f"Steady {steady.steps[0].rate:g} ops/s, Designate mix")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(loc="lower right", fontsize="small")
        written.append(_save(figure, "load-cdf.png"))
    if ramp is not None:
        figure, axes = plt.subplots(figsize=(7, 4.2))
        rates = [s.rate for s in ramp.steps[: len(ramp.cpu)]]
        for pct, style in ((50, "o-"), (90, "s-"), (99, "^-")):
            values = [
                report.percentile(samples, pct) if (samples := latencies(ramp.of_step(i))) else 0.0
                for i in range(len(rates))
            ]
            axes.plot(rates, values, style, label=f"p{pct}")
        axes.axhline(KNEE, color="grey", linestyle="--", label=f"knee: p99 = {KNEE:g} s")
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xticks(rates, [f"{r:g}" for r in rates])
        axes.set_xlabel("offered load (changes/s, Designate mix)")
        axes.set_ylabel("seconds until served by every target")
        axes.set_title("Latency against offered load (ramp)")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize="small")
        written.append(_save(figure, "load-offered.png"))
    return written


def _cdf(axes: Any, samples: list[float], label: str, style: str) -> None:
    if samples:
        ordered = sorted(samples)
        axes.plot(
            ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], style, label=label
        )


def _save(figure: Any, name: str) -> str:
    figure.tight_layout()
    figure.savefig(IMAGES / name, dpi=100)
    return f"images/{name}"


def describe(
    args: argparse.Namespace,
    steady: Run | None,
    ramp: Run | None,
    floors: dict[str, list[float]],
    cost: dict[str, float] | None,
    lost_found: list[str],
    images: list[str],
    active: ActiveWatch,
) -> str:
    runs = [(label, run) for label, run in (("steady", steady), ("ramp", ramp)) if run]
    parts = [
        f"{args.targets} BIND9 targets (with the settings doc/backends.md recommends: "
        f"{'; '.join(RECOMMENDED_OPTIONS)}; "
        + (
            "no NOTIFY to mdns of the serials they load, so the polls find each change by "
            "asking alone; "
            if args.silent_targets
            else "a NOTIFY to mdns of each serial they load, which it passes to the polls; "
        )
        + f"{PROVISIONING[args.provisioning]}), ZooKeeper, "
        f"PostgreSQL 15, {args.conductors} "
        "`zoneflow conductor`, `zoneflow mdns`, `zoneflow producer`, `zoneflow inspector` and "
        "`zoneflow api`, each its own process as deployed, with their defaults"
        + (f" but {', '.join(f'`{setting}`' for setting in args.set)}" if args.set else "")
        + " (bench/load.py). The load: Designate's mix (20 % zone creates, 6 % deletes, 74 % "
        "recordset creates or changes) on the API's v2 routes, open loop (Poisson arrivals, "
        f"over at most {args.connections} keep-alive connections), every latency counted from "
        f"the arrival; an arrival still not sent {args.drain:g} s after it was due is given up "
        "and counts as not served in time. Served: a sweeper of its own (a separate process, "
        "plain DNS SOA queries to every target) saw every target answer the change's serial "
        "(for a delete: no longer answer for the zone)"
        + (
            "; it asks a target when the target NOTIFYs it of a serial it loaded "
            "(`also-notify` on the targets alone), and once a second otherwise (deletes, "
            "which no NOTIFY announces, every 10 ms while young, then 5 % of their age)"
            if not args.sweep_by_polling
            else "; it asks every 10 ms while a change is young, then 5 % of its age"
        )
        + ". The machine was shared with other work"
        + (f" (the benchmark and its servers ran at `nice {os.nice(0)}`)" if os.nice(0) else "")
        + ": the 1-minute load average was "
        + "; ".join(f"{label} {r.load[0]:.1f} → {r.load[1]:.1f}" for label, r in runs)
        + f" on {os.cpu_count()} cores.\n"
    ]
    if steady is not None:
        shortened = "" if args.steady_seconds >= 300 else " (shortened from the issue's 5 minutes)"
        parts.append(
            f"\n**Steady {args.steady_rate:g} operations/s for {args.steady_seconds:g} s"
            f"{shortened}**, after {args.seed_zones} zones were made (then ANALYZE, as "
            "autovacuum keeps a running deployment's statistics); BIND9 alone measured "
            f"in the same run on a pair of its own ({args.floor_samples} samples each):\n\n"
            + action_table(steady, floors)
            + goals(steady)
        )
    if ramp is not None:
        parts.append(
            f"\n**Ramp** of {args.step_seconds:g} s steps"
            + ("" if args.step_seconds >= 60 else " (shortened from the issue's minute)")
            + (", stopped after the first step past the knee" if ramp.stopped_at_knee else "")
            + f": {knee(ramp)} (the knee: the p99 of served by all passes {KNEE:g} s; the "
            "issue's goal: at 200 changes/s or above).\n\n" + ramp_table(ramp)
        )
    parts.append(
        "\n**ACTIVE against served**: when `/v2/events` first reported the change's zone "
        "ACTIVE at its serial (DELETED for a delete), minus when the sweeper saw every target "
        "serve it (negative: reported before). The sweeper's answers bound each served time "
        "from below too: a report earlier than an answer still without the change is counted "
        "as ACTIVE while a target was seen without it. What the stream itself adds, from "
        "each event's commit (its `created_at`) to its arrival here: p50 "
        f"{_seconds(active.delays, 50)} s, p99 {_seconds(active.delays, 99)} s"
        f"; the stream was lost and followed again {active.reconnects} times"
        ".\n\n" + active_table(runs) + refusals(runs)
    )
    columns = []
    if steady is not None:
        columns.append((f"steady {args.steady_rate:g}/s", steady.cpu_total, _accepted(steady)))
    if ramp is not None:
        for index, used in enumerate(ramp.cpu):
            accepted = sum(c.accepted for c in ramp.of_step(index))
            columns.append((f"ramp {ramp.steps[index].rate:g}/s", used, accepted))
    if columns:
        parts.append(
            "\n**CPU per accepted change**, milliseconds, from /proc (the steady run from its "
            "first arrival until its last change was served; each ramp step over its "
            "duration, its backlog included, so past the knee it is CPU per change offered, not "
            "per change done). `other processes` is the rest of the shared machine.\n\n"
            + cpu_table(columns)
        )
    if cost is not None:
        parts.append(describe_cpu(cost, DESIGNATE_MIX, args.targets, args.provisioning))
        parts.append(sweeper_share(runs, cost["soa"]))
    parts.append(
        "\n**Jobs posted** (kind: jobs, and the zones they carried): "
        + "; ".join(f"{label}: {job_counts(r)}" for label, r in runs)
        + ". From posted to the end of their flow (the wait on the board included): "
        + "; ".join(f"{label}: {job_times(r)}" for label, r in runs)
        + ". Where the batches' time went, p50 seconds from posted to the end of each "
        "phase: " + "; ".join(f"{label}: {job_phases(r)}" for label, r in runs) + ".\n"
    )
    parts.append(
        "\n**PostgreSQL sessions begun** (each a backend forked and authenticated; "
        "a pooled connection reused begins none): "
        + "; ".join(
            f"{label}: {r.sessions} ({r.sessions / max(_accepted(r), 1):.2f} a change), "
            f"at most {r.connections} connections open at once"
            for label, r in runs
        )
        + ".\n"
    )
    sweeps = [
        f"{label}: {r.cpu_total.get('sweeper', 0.0):.1f} s of CPU for "
        f"{_accepted(r)} changes, {r.sweeper.get('queries', 0)} "
        f"queries, {r.sweeper.get('answers', 0)} answers" + _notified(r)
        for label, r in runs
    ]
    parts.append(
        "\nThe sweeper: "
        + "; ".join(sweeps)
        + (
            ". Nothing lost: every zone and recordset accepted is in the database with its "
            "latest records, each deleted zone is gone, and a sample of the recordsets was "
            "asked of every target, each serving the records last accepted."
            if not lost_found
            else f". At the end, {len(lost_found)} accepted changes were not carried out "
            f"(a backlog not drained counts too), e.g. {lost_found[:3]}."
        )
        + "\n"
    )
    if images:
        parts.append("\n" + "\n".join(f"![{name}]({name})" for name in images) + "\n")
    return "".join(parts)


def _notified(run: Run) -> str:
    """How the sweeper found the run's changes served: the share of (change, target) pairs
    seen served by the query a NOTIFY from the target prompted, rather than by asking at
    its pace; nothing when the targets NOTIFYed no one."""
    notifies = run.sweeper.get("notifies", 0)
    if not notifies:
        return ""
    prompted = run.sweeper.get("served_on_notify", 0)
    found = prompted + run.sweeper.get("served_on_poll", 0)
    return (
        f", {notifies} NOTIFYs from the targets; {prompted} of {found} times a target was "
        f"seen serving a change ({100.0 * prompted / max(found, 1):.1f} %) were found by "
        "the query its NOTIFY prompted (a delete never is: no NOTIFY announces it)"
    )


def sweeper_share(runs: list[tuple[str, Run]], soa_ms: float) -> str:
    """What answering the sweeper cost BIND9, per change: its queries a change times what
    named spends on an SOA query (the floor's). The measurement's own load on the
    targets, inside their CPU above."""
    shares = []
    for label, run in runs:
        per_change = run.sweeper.get("queries", 0) / max(_accepted(run), 1)
        shares.append(
            f"{label}: {per_change:.0f} queries a change, about {per_change * soa_ms:.1f} ms"
        )
    return (
        "\nOf BIND9's CPU above, answering the sweeper's queries (its queries a change times "
        f"named's {soa_ms:.3f} ms for an SOA query) took " + "; ".join(shares) + ".\n"
    )


def job_counts(run: Run) -> str:
    """The run's jobs by kind: ``update-zones 120 (900 zones, 7.5 a job)``."""
    return (
        ", ".join(
            f"{kind} {jobs}"
            + (f" ({zones} zones, {zones / jobs:.1f} a job)" if zones != jobs else "")
            for kind, (jobs, zones) in sorted(run.jobs.items())
        )
        or "none"
    )


def job_times(run: Run) -> str:
    """How long the run's jobs took, by kind, from posted to their flow's end (the wait
    on the board included): ``update-zones p50 1.20 / p99 4.00 s``."""
    kinds = sorted({record.kind for record in run.job_records})
    return (
        ", ".join(
            f"{kind} p50 {_seconds(seconds, 50)} / p99 {_seconds(seconds, 99)} s"
            for kind in kinds
            if (seconds := [r.seconds for r in run.job_records if r.kind == kind])
        )
        or "none"
    )


def job_phases(run: Run) -> str:
    """Where the batch jobs' time went, by kind: the p50 over its jobs of the seconds
    from posting to the end of each phase (``update-zones: claimed 0.40, ...``)."""
    kinds = sorted({r.kind for r in run.job_records if r.kind.endswith("-zones")})
    parts = []
    for kind in kinds:
        records = [r for r in run.job_records if r.kind == kind]
        ends = [
            f"{phase} {_seconds(seconds, 50)}"
            for phase in PHASES
            if (seconds := [r.phases[phase] for r in records if phase in r.phases])
        ]
        if ends:
            parts.append(f"{kind}: " + ", ".join(ends))
    return "; ".join(parts) or "none"


def _accepted(run: Run) -> int:
    return sum(c.accepted for c in run.changes)
