"""The suite's order under pytest-xdist (tests/ordering.py)."""

from __future__ import annotations

from tests import ordering


def _suite() -> list[str]:
    ids = [f"tests/functional/test_f{m}.py::t{i}" for m in range(6) for i in range(m + 1)]
    ids += [f"tests/integration/test_i{m}.py::t{i}" for m in range(10) for i in range(30)]
    ids += [f"tests/unit/test_u{m}.py::t{i}" for m in range(5) for i in range(20)]
    return ids


def test_runs_have_the_counts_worksteal_cuts_and_about_the_same_time() -> None:
    ids = _suite()
    order = ordering.balanced(ids, ids, 4)
    assert sorted(order) == sorted(ids)
    sizes = ordering.run_sizes(len(ids), 4)
    assert sum(sizes) == len(ids) and max(sizes) - min(sizes) <= 1
    runs, start = [], 0
    for size in sizes:
        runs.append(order[start : start + size])
        start += size
    seconds = [sum(ordering._seconds(i) for i in run) for run in runs]
    assert max(seconds) - min(seconds) <= ordering.SECONDS["functional"], seconds


def test_each_run_starts_with_its_functional_modules_whole() -> None:
    ids = _suite()
    order = ordering.balanced(ids, ids, 4)
    sizes = ordering.run_sizes(len(ids), 4)
    start = 0
    for size in sizes:
        run = order[start : start + size]
        start += size
        kinds = [i.split("/")[1] for i in run]
        functional = kinds.count("functional")
        assert kinds[:functional] == ["functional"] * functional
        modules = {i.split("::")[0] for i in run[:functional]}
        for module in modules:
            assert sum(i.startswith(module + "::") for i in order) == sum(
                i.startswith(module + "::") for i in run
            ), f"{module} split across runs"
