"""Before a resumed flow runs: atoms its logbook shows ahead of what they depend on
run again, in order.

TaskFlow resumes a flow from its persisted atom states and trusts them: it
runs again at once every atom left RUNNING or REVERTING, and reverts those
left FAILURE. That is right for a logbook one engine wrote, where an atom
ran only after all its predecessors succeeded. A logbook whose rows came
from two engines, or from writes that landed out of order, can show an atom
RUNNING (or done) while an atom it depends on is still RUNNING: no single
engine ever held that state, and TaskFlow then runs or reverts the later
atom without the earlier one's result (the chaos test saw update-status
fail so, ``NotFound`` for ``served:<host>:<port>`` while its PollForSerial
was RUNNING, and the job ended FAILURE without a revert).

:func:`restore_order` finds such atoms in the compiled graph (their nearest
predecessor atoms: providers of what they require, and the flow's order)
and resets each, with every atom after it, to PENDING with the intention to
execute, through TaskFlow's storage API; the engine then runs them again in
order. Every zoneflow task is idempotent, because a resumed job may run a
task again anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from taskflow import states
from taskflow.engines.action_engine import compiler

LOG = logging.getLogger(__name__)

# Atom states reached by running forward: only after every predecessor succeeded.
_RAN = frozenset({states.RUNNING, states.SUCCESS, states.FAILURE})
# Atom states reached by undoing: never while a predecessor still runs (a
# predecessor merely PENDING may be reverted after it, so it is not a sign).
_UNDOING = frozenset({states.REVERTING, states.REVERTED, states.REVERT_FAILURE})
# What a predecessor must be for an atom to have run after it (IGNORE: a
# decider skipped it, and TaskFlow runs what follows).
_DONE = frozenset({states.SUCCESS, states.IGNORE})


def restore_order(graph: Any, storage: Any) -> list[str]:
    """Reset the atoms the persisted states show ahead of their predecessors, and
    every atom after them, to PENDING; return the names reset (none: nothing done).

    ``graph``: the flow's compiled execution graph; ``storage``: the engine's.
    """
    atoms = [node for node, kind in graph.nodes(data="kind") if kind in compiler.ATOMS]
    found = storage.get_atoms_states(atom.name for atom in atoms)
    state = {name: atom_state for name, (atom_state, _intention) in found.items()}
    if all(atom_state == states.PENDING for atom_state in state.values()):
        return []  # a job's first run: the usual case, nothing to check
    reasons = {}
    for atom in atoms:
        behind = _behind(graph, atom, state)
        if behind:
            reasons[atom.name] = f"{atom.name} is {state[atom.name]} while " + ", ".join(
                f"{name} is {state[name]}" for name in behind
            )
    if not reasons:
        return []
    reset: list[str] = []
    for atom in atoms:
        if atom.name in reasons:
            for after in (atom, *_atoms_after(graph, atom)):
                if after.name not in reset:
                    reset.append(after.name)
    for name in reset:
        storage.reset(name, state=states.PENDING)
        storage.set_atom_intention(name, states.EXECUTE)
    LOG.warning(
        "flow %s (%s) resumed from states no single run left (%s): "
        "reset to PENDING to run again in order: %s",
        storage.flow_name,
        storage.flow_uuid,
        "; ".join(reasons.values()),
        ", ".join(reset),
    )
    return reset


def _behind(graph: Any, atom: Any, state: dict[str, str]) -> list[str]:
    """The predecessors that ``atom``'s own state says must be further than they are."""
    if state[atom.name] in _RAN:
        return [p.name for p in _atoms_before(graph, atom) if state[p.name] not in _DONE]
    if state[atom.name] in _UNDOING:
        return [p.name for p in _atoms_before(graph, atom) if state[p.name] == states.RUNNING]
    return []


def _atoms_before(graph: Any, atom: Any) -> Iterator[Any]:
    """The nearest atoms before ``atom``, through the nodes that mark a subflow's
    start and end."""
    return _nearest_atoms(graph, atom, graph.predecessors, stop_at_atoms=True)


def _atoms_after(graph: Any, atom: Any) -> Iterator[Any]:
    """Every atom after ``atom``."""
    return _nearest_atoms(graph, atom, graph.successors, stop_at_atoms=False)


def _nearest_atoms(graph: Any, start: Any, step: Any, *, stop_at_atoms: bool) -> Iterator[Any]:
    seen = {start}
    todo = list(step(start))
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        is_atom = graph.nodes[node]["kind"] in compiler.ATOMS
        if is_atom:
            yield node
        if not (is_atom and stop_at_atoms):
            todo.extend(step(node))
