"""The order pytest-xdist's workers run the suite in: long tests first, spread evenly.

``--dist worksteal`` gives each of N workers a contiguous run of the
collection, equal in number of tests, and later moves tests from the tail of
the longest queue (longest by count) to a worker that ran dry. In the plain
alphabetical order, tests/functional (a tenth of the tests, nine tenths of
the time) filled the first two runs: two workers spent the last minute on
functional tests while the other two had long finished their quick ones.

This order keeps each module's tests together (module fixtures, such as
Keystone, start once per worker) and builds N runs of the counts worksteal
will cut, each with the same estimated time: modules of functional tests
are dealt first, heaviest first, each to the lightest run; then the quick
tests fill every run up to its count, each one to the lightest run with room.
Every run therefore starts with its long tests and ends with quick ones,
which is what stealing moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")

# Estimated seconds a test takes, by its directory: rough, and only relative.
SECONDS = {"functional": 10.0, "integration": 0.5, "unit": 0.02}


def _seconds(nodeid: str) -> float:
    parts = nodeid.split("/")
    return SECONDS.get(parts[1] if len(parts) > 1 else "", 0.5)


def run_sizes(total: int, workers: int) -> list[int]:
    """The count of tests worksteal first sends each worker: the pending tests split
    evenly, in turn, among the workers that have none yet."""
    sizes, left = [], total
    for remaining in range(workers, 0, -1):
        sizes.append(left // remaining)
        left -= sizes[-1]
    return sizes


def balanced(items: Sequence[T], nodeids: Sequence[str], workers: int) -> list[T]:
    """``items`` (with these node ids) reordered into ``workers`` equal-count runs of
    about equal estimated time, long modules first in each."""
    modules: dict[str, list[int]] = {}
    for index, nodeid in enumerate(nodeids):
        modules.setdefault(nodeid.split("::")[0], []).append(index)
    sizes = run_sizes(len(items), workers)
    runs: list[list[int]] = [[] for _ in sizes]
    load = [0.0] * workers

    def lightest(candidates: Sequence[int]) -> int:
        return min(candidates, key=lambda run: (load[run], run))

    heavy = [m for m in modules if _seconds(m) >= SECONDS["functional"]]
    for module in sorted(heavy, key=lambda m: (-len(modules[m]), m)):
        run = lightest(range(workers))
        runs[run].extend(modules[module])
        load[run] += len(modules[module]) * _seconds(module)
    quick = [i for m in modules if m not in heavy for i in modules[m]]
    for index in quick:
        run = lightest([r for r in range(workers) if len(runs[r]) < sizes[r]])
        runs[run].append(index)
        load[run] += _seconds(nodeids[index])
    return [items[i] for run in runs for i in run]
