"""Draw a flow as Graphviz DOT: subflows as clusters, atoms as nodes.

The graph comes from TaskFlow's own compilation of the flow, so what is
drawn is what the engine runs. Given how each atom of a job ran
(:class:`AtomRun`), every atom is filled with its state's colour and
names that state in its label too, so the picture reads without colour;
a legend explains the colours.
"""

from __future__ import annotations

import dataclasses
import html
import shutil
import subprocess
import textwrap
from collections.abc import Mapping
from typing import Any

import taskflow.engines
from taskflow import states as tf_states

from zoneflow import exceptions

# Light fills, so the black label stays readable on every one of them.
STATE_COLOURS = {
    tf_states.PENDING: "#d9d9d9",
    tf_states.RUNNING: "#9ecae1",
    tf_states.SUCCESS: "#a1d99b",
    tf_states.FAILURE: "#fb6a4a",
    tf_states.REVERTING: "#fdae6b",
    tf_states.REVERTED: "#fdae6b",
    tf_states.REVERT_FAILURE: "#e7298a",
    tf_states.RETRYING: "#bcbddc",
}
FAILURE_COLOUR = STATE_COLOURS[tf_states.FAILURE]

# (what the legend calls it, the state whose colour it shows, what it means)
LEGEND = (
    ("PENDING", tf_states.PENDING, "not run"),
    ("RUNNING", tf_states.RUNNING, "running"),
    ("SUCCESS", tf_states.SUCCESS, "done"),
    ("FAILURE", tf_states.FAILURE, "failed, and maybe undone since"),
    ("REVERTING / REVERTED", tf_states.REVERTED, "being undone / undone"),
    ("REVERT_FAILURE", tf_states.REVERT_FAILURE, "undoing it failed"),
    ("RETRYING", tf_states.RETRYING, "about to run again"),
)

# A note under a node says enough to tell what went wrong, not the whole
# story (`zoneflow job show --json` has that), and keeps the picture narrow.
NOTE_WIDTH = 40
NOTE_LINES = 3


@dataclasses.dataclass(frozen=True)
class AtomRun:
    """How one atom of a job ran, as far as it is drawn.

    ``failed`` is the atom's own work having failed, which its state may no
    longer say: a failed task is reverted afterwards, and a target that
    failed is an outcome its task returns rather than raises (so the
    consensus can weigh it). ``note`` is a short line under the state, such
    as the target's label or the error.
    """

    state: str
    failed: bool = False
    note: str = ""


@dataclasses.dataclass(frozen=True)
class JobRun:
    """How the job the flow belongs to ended, as the legend states it: the job's
    state (``zoneflow job list``'s word), whether it failed, and why."""

    state: str
    failed: bool = False
    reason: str | None = None


# How wide the legend's line about the job is, and at most how many lines.
JOB_LINE_WIDTH = 60
JOB_LINES = 6


def to_dot(
    flow: Any,
    runs: Mapping[str, AtomRun] | None = None,
    *,
    title: str | None = None,
    job: JobRun | None = None,
) -> str:
    """The flow as DOT; with ``runs`` (atom name -> AtomRun) coloured, with a legend
    that starts with how the ``job`` ended."""
    engine = taskflow.engines.load(flow, store={"zone_id": "", "serial": 0})
    engine.compile()
    graph = engine.compilation.execution_graph
    hierarchy = engine.compilation.hierarchy
    lines = [
        f"digraph {_quote(flow.name)} {{",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica"];',
        '  graph [fontname="Helvetica"];',
    ]
    if title:
        lines.append(f"  labelloc=t; label={_quote(title)};")
    counter = iter(range(10**6))

    def emit(node: Any, indent: str) -> None:
        for child in node:
            item = child.item
            if child.metadata.get("kind") == "flow":
                lines.append(f"{indent}subgraph cluster_{next(counter)} {{")
                lines.append(f"{indent}  label={_quote(f'{_kind(item)}: {item.name}')};")
                emit(child, indent + "  ")
                lines.append(f"{indent}}}")
            else:
                shape = ", shape=diamond" if child.metadata.get("kind") == "retry" else ""
                lines.append(f"{indent}{_quote(item.name)} [{_node(item.name, runs)}{shape}];")

    emit(hierarchy, "  ")
    for source, target in sorted(_atom_edges(graph)):
        lines.append(f"  {_quote(source)} -> {_quote(target)};")
    if runs is not None:
        lines.extend(_legend(job))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node(name: str, runs: Mapping[str, AtomRun] | None) -> str:
    if runs is None:
        return f"label={_quote(name)}, fillcolor=white"
    run = runs.get(name, AtomRun(tf_states.PENDING))
    if run.failed and run.state != tf_states.FAILURE:
        state_line, colour = f"FAILURE, then {run.state}", FAILURE_COLOUR
    else:
        state_line, colour = run.state, STATE_COLOURS.get(run.state, "white")
    label = [
        name,
        state_line,
        *textwrap.wrap(run.note, NOTE_WIDTH, max_lines=NOTE_LINES, placeholder=" …"),
    ]
    # A thick border marks failures for readers (and printers) without colour.
    border = ", penwidth=3" if run.failed or run.state == tf_states.FAILURE else ""
    return f'label={_quote(chr(10).join(label))}, fillcolor="{colour}"{border}'


def _legend(job: JobRun | None = None) -> list[str]:
    rows = _job_row(job) + "".join(
        f'<tr><td bgcolor="{STATE_COLOURS[state]}">{name}</td><td align="left">{meaning}</td></tr>'
        for name, state, meaning in LEGEND
    )
    return [
        "  subgraph cluster_legend {",
        '    label="legend"; style=dashed;',
        f'    legend [shape=plaintext, style="", label=<<table border="0" cellborder="1"'
        f' cellspacing="0" cellpadding="4">{rows}</table>>];',
        "  }",
    ]


def _job_row(job: JobRun | None) -> str:
    """The legend's first row: the job's state, failed or not, and why."""
    if job is None:
        return ""
    colour = STATE_COLOURS.get(job.state, FAILURE_COLOUR if job.failed else "white")
    meaning = "failed" if job.failed else "done" if job.state == tf_states.SUCCESS else ""
    text = f"{meaning}: {job.reason}" if job.reason else meaning
    wrapped = textwrap.wrap(text, JOB_LINE_WIDTH, max_lines=JOB_LINES, placeholder=" …")
    cell = "<br/>".join(html.escape(line) for line in wrapped)
    return (
        f'<tr><td bgcolor="{colour}"><b>job: {html.escape(job.state)}</b></td>'
        f'<td align="left">{cell}</td></tr>'
    )


def _quote(text: str) -> str:
    """A DOT string literal (newlines become centred line breaks)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _kind(flow: Any) -> str:
    return type(flow).__module__.rsplit(".", 1)[-1].replace("_flow", "")


ATOM_KINDS = ("task", "retry")


def _atom_edges(graph: Any) -> set[tuple[str, str]]:
    """Edges between atoms, looking through the no-op nodes that start and end flows."""
    atoms = [n for n, data in graph.nodes(data=True) if data.get("kind") in ATOM_KINDS]
    edges: set[tuple[str, str]] = set()
    for atom in atoms:
        stack, seen = list(graph.successors(atom)), set()
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            if graph.nodes[node].get("kind") not in ATOM_KINDS:
                stack.extend(graph.successors(node))
            else:
                edges.add((atom.name, node.name))
    return edges


def to_image(dot: str, fmt: str) -> bytes:
    """Render DOT to svg or png with Graphviz's ``dot``."""
    if shutil.which("dot") is None:
        raise exceptions.InvalidConfig(
            "Graphviz's 'dot' is not installed: apt-get install graphviz, or ask for dot output"
        )
    done = subprocess.run(
        ["dot", f"-T{fmt}"], input=dot.encode(), capture_output=True, timeout=30, check=False
    )
    if done.returncode != 0:
        raise exceptions.ZoneflowError(f"Graphviz failed: {done.stderr.decode(errors='replace')}")
    return done.stdout
