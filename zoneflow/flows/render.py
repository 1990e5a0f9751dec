"""Draw a flow as Graphviz DOT: subflows as clusters, atoms as nodes.

The graph comes from TaskFlow's own compilation of the flow, so what is
drawn is what the engine runs. With ``states`` (atom name -> TaskFlow
state) each atom is coloured by how far a job got.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import taskflow.engines
from taskflow import states as tf_states

from zoneflow import exceptions

STATE_COLOURS = {
    tf_states.PENDING: "white",
    tf_states.RUNNING: "lightblue",
    tf_states.SUCCESS: "palegreen",
    tf_states.FAILURE: "salmon",
    tf_states.REVERTING: "orange",
    tf_states.REVERTED: "gold",
    tf_states.REVERT_FAILURE: "red",
    tf_states.RETRYING: "plum",
}


def to_dot(flow: Any, states: dict[str, str] | None = None) -> str:
    engine = taskflow.engines.load(flow, store={"zone_id": "", "serial": 0})
    engine.compile()
    graph = engine.compilation.execution_graph
    hierarchy = engine.compilation.hierarchy
    lines = [
        f'digraph "{flow.name}" {{',
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica"];',
        '  graph [fontname="Helvetica"];',
    ]
    counter = iter(range(10**6))

    def emit(node: Any, indent: str) -> None:
        for child in node:
            item = child.item
            if child.metadata.get("kind") == "flow":
                lines.append(f"{indent}subgraph cluster_{next(counter)} {{")
                lines.append(f'{indent}  label="{_kind(item)}: {item.name}";')
                emit(child, indent + "  ")
                lines.append(f"{indent}}}")
            else:
                state = (states or {}).get(item.name)
                colour = STATE_COLOURS.get(state or "", "white")
                label = item.name if state is None else f"{item.name}\\n{state}"
                shape = ", shape=diamond" if child.metadata.get("kind") == "retry" else ""
                lines.append(f'{indent}"{item.name}" [label="{label}", fillcolor={colour}{shape}];')

    emit(hierarchy, "  ")
    for source, target in sorted(_atom_edges(graph)):
        lines.append(f'  "{source}" -> "{target}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


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
            "Graphviz's 'dot' is not installed: apt-get install graphviz, or use --format dot"
        )
    done = subprocess.run(
        ["dot", f"-T{fmt}"], input=dot.encode(), capture_output=True, timeout=30, check=False
    )
    if done.returncode != 0:
        raise exceptions.ZoneflowError(f"Graphviz failed: {done.stderr.decode(errors='replace')}")
    return done.stdout
