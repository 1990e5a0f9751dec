"""zoneflow's lean TaskFlow persistence: fewer writes, and still everything resumption needs."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import futurist
import sqlalchemy
from taskflow import engines, states, task
from taskflow.patterns import graph_flow, unordered_flow
from taskflow.persistence import backends, models

from zoneflow.conductor import persistence
from zoneflow.storage import db


class Answer(task.Task):
    def execute(self) -> dict[str, Any]:
        return {"ok": True, "name": self.name}


def _flow() -> graph_flow.Flow:
    targets = unordered_flow.Flow("targets").add(*(Answer(name=f"target-{i}") for i in range(3)))
    return graph_flow.Flow("job").add(Answer(name="begin"), targets)


def _run(backend: Any) -> models.FlowDetail:
    book = models.LogBook("job")
    detail = models.FlowDetail("job", uuid.uuid4().hex)
    book.add(detail)
    with contextlib.closing(backend.get_connection()) as connection:
        connection.save_logbook(book)
    with futurist.ThreadPoolExecutor(4) as executor:
        engine = engines.load(
            _flow(),
            flow_detail=detail,
            book=book,
            backend=backend,
            engine="parallel",
            executor=executor,
        )
        engine.run()
    return detail


def test_what_a_fresh_reader_finds_is_what_the_engine_ended_with() -> None:
    detail = _run(persistence.get_backend())
    # Read back with stock TaskFlow, as another conductor resuming would.
    stock = backends.fetch({"connection": db.connection_url()})
    with contextlib.closing(stock.get_connection()) as connection:
        stored = connection.get_flow_details(detail.uuid)
    assert stored.state == states.SUCCESS
    results = {atom.name: (atom.state, atom.results) for atom in stored}
    for name in ("begin", "target-0", "target-1", "target-2"):
        assert results[name] == (states.SUCCESS, {"ok": True, "name": name})


def test_each_task_is_written_twice_not_four_times() -> None:
    backend = persistence.get_backend()
    _run(backend)  # warm up: tables, caches
    updates: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("UPDATE atomdetails"):
            updates.append(statement)

    sqlalchemy.event.listen(backend.engine, "before_cursor_execute", count)
    try:
        _run(backend)
    finally:
        sqlalchemy.event.remove(backend.engine, "before_cursor_execute", count)
    # RUNNING, then SUCCESS with the result, for each of the 4 tasks; the
    # progress reports TaskFlow makes around each task are not written.
    assert len(updates) == 4 * 2
