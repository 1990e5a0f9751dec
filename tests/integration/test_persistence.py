"""zoneflow's lean TaskFlow persistence: fewer writes, and still everything resumption needs."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import futurist
import pytest
import sqlalchemy
from taskflow import engines, states, task
from taskflow import exceptions as tf_exc
from taskflow.patterns import graph_flow, unordered_flow
from taskflow.persistence import backends, models

from zoneflow.storage import db
from zoneflow.taskflow_adapter import persistence


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
    backend.flush()  # what the conductor does before a job leaves the board
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


def test_a_logbook_reads_back_as_stock_taskflow_reads_it() -> None:
    backend = persistence.get_backend()
    detail = _run(backend)
    with contextlib.closing(backend.get_connection()) as connection:
        (book_uuid,) = [b.uuid for b in connection.get_logbooks() if b.find(detail.uuid)]
        lean = connection.get_logbook(book_uuid)
        with pytest.raises(tf_exc.NotFound):
            connection.get_logbook(uuid.uuid4().hex)
    stock = backends.fetch({"connection": db.connection_url()})
    with contextlib.closing(stock.get_connection()) as connection:
        expected = connection.get_logbook(book_uuid)

    def whole(book: models.LogBook) -> Any:
        # Not updated_at: TaskFlow sets it to the time a flow is added to the object.
        return (
            {k: v for k, v in book.to_dict().items() if k != "updated_at"},
            {
                flow.uuid: (flow.to_dict(), {atom.uuid: atom.to_dict() for atom in flow})
                for flow in book
            },
        )

    assert whole(lean) == whole(expected)
    assert {atom.name for atom in lean.find(detail.uuid)} >= {"begin", "target-0"}


def test_each_task_is_written_once_per_real_change() -> None:
    backend = persistence.get_backend()
    _run(backend)  # warm up: tables, caches
    written: list[dict[str, Any]] = []

    def count(
        conn: Any, clauseelement: Any, multiparams: Any, params: Any, execution_options: Any
    ) -> None:
        if str(clauseelement).startswith("INSERT INTO atomdetails"):
            written.extend(multiparams or [params])

    sqlalchemy.event.listen(backend.engine, "before_execute", count)
    try:
        detail = _run(backend)
    finally:
        sqlalchemy.event.remove(backend.engine, "before_execute", count)
    # Each of the 4 tasks: at most its new row, RUNNING, then SUCCESS with the
    # result (fewer when a newer change replaced one still queued). The
    # progress reports TaskFlow makes around each task are never written.
    names = {atom.uuid: atom.name for atom in detail}
    by_atom: dict[str, list[str]] = {}
    for row in written:
        by_atom.setdefault(names[row["uuid"]], []).append(row["state"])
    assert sorted(by_atom) == ["begin", "target-0", "target-1", "target-2"]
    for name, states_written in by_atom.items():
        assert len(states_written) <= 3, (name, states_written)
        assert states_written[-1] == states.SUCCESS
        assert all(a != b for a, b in zip(states_written, states_written[1:], strict=False)), (
            states_written
        )


def test_a_failed_write_is_retried_until_the_database_takes_it() -> None:
    backend = persistence.get_backend()
    book = models.LogBook("job")
    detail = models.FlowDetail("job", uuid.uuid4().hex)
    book.add(detail)
    with contextlib.closing(backend.get_connection()) as connection:
        connection.save_logbook(book)
    atom = models.TaskDetail("task", uuid.uuid4().hex)
    detail.add(atom)
    connection.update_flow_details(detail)
    backend.flush()

    # The table is gone for a while (as during a database restart): the
    # change waits in the queue, and a flush says it is not written.
    with backend.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE atomdetails RENAME TO atomdetails_away")
    atom.state = states.SUCCESS
    atom.results = {"ok": True}
    connection.update_atom_details(atom)
    with pytest.raises(tf_exc.StorageFailure, match="not written"):
        backend.flush(timeout=0.5)

    with backend.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE atomdetails_away RENAME TO atomdetails")
    backend.flush(timeout=10)
    stock = backends.fetch({"connection": db.connection_url()})
    with contextlib.closing(stock.get_connection()) as reader:
        stored = reader.get_atom_details(atom.uuid)
    assert (stored.state, stored.results) == (states.SUCCESS, {"ok": True})
