"""`zoneflow job show ID --graph`: a real job's flow, each task coloured by its persisted state.

The jobs run for real: a conductor claims them from the zake board and runs
them on the fake backend, and the graph is read back from the logbook.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Iterator

import pytest
from oslo_config import cfg
from taskflow import states

from tests.integration.conftest import load_pool, wait_settled
from tests.support import eventually
from zoneflow import cli, flows, jobs, objects
from zoneflow.central import drawing
from zoneflow.central import zones as central_zones
from zoneflow.flows import render
from zoneflow.taskflow_adapter import persistence

NODE = re.compile(r'^\s*"(?P<name>[^"]+)" \[(?P<attrs>.*)\];$', re.MULTILINE)


@pytest.fixture(autouse=True)
def one_try_per_target() -> Iterator[None]:
    """A failing target fails at once instead of after its retries."""
    cfg.CONF.set_override("target_attempts", 1, group="flows")
    yield
    cfg.CONF.clear_override("target_attempts", group="flows")


@pytest.fixture
def reverted_job(conductor: object) -> tuple[str, objects.Pool]:  # noqa: F811
    """A create-zone job reverted because one of two targets failed (threshold 100%)."""
    pool = load_pool({}, {"fail": "create"}, threshold=100)
    zone = central_zones.create_zone("example.com", "hostmaster@example.com")
    assert wait_settled(zone.id).status == objects.Status.ERROR
    (job,) = jobs.list_jobs(persistence.get_backend())
    _until_finished(job.id)
    return job.id, pool


def _until_finished(job_id: str) -> None:
    """The zone goes to ERROR in the last revert; the flow's own state is saved just after."""
    eventually(
        lambda: jobs.get_job(persistence.get_backend(), job_id).state == states.REVERTED,
        what=f"job {job_id} to reach REVERTED",
    )


def _nodes(dot: str) -> dict[str, str]:
    return {m["name"]: m["attrs"] for m in NODE.finditer(dot)}


def _label(attrs: str) -> list[str]:
    match = re.search(r'label="((?:[^"\\]|\\.)*)"', attrs)
    assert match, attrs
    return match[1].split("\\n")


def _fill(attrs: str) -> str:
    match = re.search(r'fillcolor="?([^",]+)"?', attrs)
    assert match, attrs
    return match[1]


def test_graph_of_a_reverted_create_shows_the_failed_target_and_the_reverts(
    capsys: pytest.CaptureFixture[str], reverted_job: tuple[str, objects.Pool]
) -> None:
    job_id, pool = reverted_job
    healthy, broken = pool.targets

    assert cli.main(["job", "show", job_id, "--graph", "dot"]) == 0
    dot = capsys.readouterr().out
    nodes = _nodes(dot)

    failed = nodes[f"create-zone-on-target-{broken.id}"]
    assert _fill(failed) == render.STATE_COLOURS[states.FAILURE]
    assert _label(failed)[1] == "FAILURE, then REVERTED"
    assert " ".join(_label(failed)[2:]) == f"target {broken.label}: injected failure of create"
    undone = nodes[f"create-zone-on-target-{healthy.id}"]
    assert _fill(undone) == render.STATE_COLOURS[states.REVERTED]
    assert _label(undone)[1:] == ["REVERTED", f"target {healthy.label}"]
    begin = nodes["begin"]
    assert (_fill(begin), _label(begin)) == (
        render.STATE_COLOURS[states.REVERTED],
        ["begin", "REVERTED"],
    )
    consensus = nodes["consensus-check"]
    assert _fill(consensus) == render.STATE_COLOURS[states.FAILURE]
    assert _label(consensus)[1] == "FAILURE, then REVERTED"
    assert " ".join(_label(consensus)[2:]).startswith("1 of 2 targets succeeded")
    never_ran = nodes["update-status"]
    assert (_fill(never_ran), _label(never_ran)) == (
        render.STATE_COLOURS[states.PENDING],
        ["update-status", "PENDING"],
    )

    assert 'label="unordered: targets"' in dot, "the per-target tasks form a cluster"
    assert "cluster_legend" in dot and "REVERTING / REVERTED" in dot
    assert f"job {job_id}" in dot and "example.com. serial" in dot


def test_graph_renders_as_svg_png_and_to_a_file(
    capsysbinary: pytest.CaptureFixture[bytes],
    tmp_path: pathlib.Path,
    reverted_job: tuple[str, objects.Pool],
) -> None:
    job_id, _ = reverted_job

    assert cli.main(["job", "show", job_id, "--graph", "svg"]) == 0
    svg = capsysbinary.readouterr().out
    assert svg.lstrip().startswith((b"<?xml", b"<svg"))
    assert b"FAILURE, then REVERTED" in svg

    assert cli.main(["job", "show", job_id, "--graph", "png"]) == 0
    assert capsysbinary.readouterr().out.startswith(b"\x89PNG\r\n\x1a\n")

    path = tmp_path / "job.svg"
    assert cli.main(["job", "show", job_id, "--output", str(path)]) == 0, "format from suffix"
    assert capsysbinary.readouterr().out == b""
    assert path.read_bytes().startswith((b"<?xml", b"<svg"))


@pytest.mark.usefixtures("fake_pool")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("job", "show", "0000", "--graph", "svg"), "job 0000 does not exist"),
        (("job", "show", "0000", "--output", "job.txt"), "cannot tell the graph format"),
    ],
)
def test_graph_errors_are_one_line_on_stderr_with_exit_1(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    assert cli.main(list(args)) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("zoneflow: error: ") and message in err
    assert err.count("\n") == 1


def test_an_atom_without_a_persisted_state_is_drawn_pending() -> None:
    flow = flows.FACTORIES["create-zone"](**drawing.example_pool_args())
    nodes = _nodes(render.to_dot(flow, {}))
    assert nodes
    assert {_label(a)[1] for a in nodes.values()} == {states.PENDING}
    assert {_fill(a) for a in nodes.values()} == {render.STATE_COLOURS[states.PENDING]}


def test_flow_show_draws_no_states_and_no_legend() -> None:
    flow = flows.FACTORIES["create-zone"](**drawing.example_pool_args())
    dot = render.to_dot(flow)
    assert "cluster_legend" not in dot
    assert {_fill(a) for a in _nodes(dot).values()} == {"white"}
