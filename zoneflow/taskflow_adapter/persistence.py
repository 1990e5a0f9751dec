"""TaskFlow's persistence (logbooks, flow and atom details) in zoneflow's database.

Persisted atom states are what lets a second conductor resume a job a dead
one was running: finished tasks are not run again.

:class:`LeanConnection` implements TaskFlow's public connection interface
(taskflow.persistence.base.Connection) itself for what the engines and the
job commands do often (reading logbooks, writing atom and flow changes) and
hands the rest (save_logbook, destroy_logbook, the single-detail reads,
upgrade, clear_all, validate) to the stock SQLAlchemy connection it wraps.
Those are rare, and the schema and its alembic migrations are TaskFlow's:
writing them again would be a second copy of TaskFlow's schema to keep in
step with it. Tables come from TaskFlow's public ``tables.fetch``.
:class:`SharedConnectionBackend` subclasses TaskFlow's public
SQLAlchemyBackend and overrides only public methods.

Over 400 lines for a reason: the connection is one class whose methods
each replace one of TaskFlow's, and they read best side by side; the
writer thread behind it is in writer.py.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy
from oslo_utils import timeutils
from taskflow import exceptions as tf_exc
from taskflow.persistence import base, models
from taskflow.persistence.backends import impl_sqlalchemy
from taskflow.persistence.backends.sqlalchemy import tables as tf_tables

from zoneflow.storage import db
from zoneflow.storage import tables as zoneflow_tables
from zoneflow.taskflow_adapter import fencing, indexes, pages
from zoneflow.taskflow_adapter.writer import FLUSH_TIMEOUT, LogbookWriter, insert, storage_failure

LOG = logging.getLogger(__name__)

_lock = threading.Lock()
_backends: dict[str, Any] = {}


def get_backend() -> Any:
    """The persistence backend on this process's database (one per process)."""
    url = db.connection_url()
    with _lock:
        backend = _backends.get(url)
        if backend is None:
            backend = _create(url)
            _backends[url] = backend
        return backend


# Atom metadata keys that only report progress: nothing resumption needs.
_PROGRESS_KEYS = frozenset({"progress", "progress_details"})
# Atoms whose last queued row a connection remembers (to skip progress-only
# writes, and to write an atom whole without reading its flow); an atom
# forgotten is written in place, at once, on its next change.
WRITTEN_ATOMS_KEPT = 20_000
# Logbooks read whole in one statement: SQLite caps a statement's parameters.
_SLICE = 500


@dataclasses.dataclass(frozen=True)
class _Queued:
    """An atom's row as this connection last queued it."""

    values: dict[str, Any]  # AtomDetail.to_dict()
    parent_uuid: str
    atom_type: str


class LeanConnection(base.Connection):
    """TaskFlow's SQLAlchemy connection, writing each change once, behind the engine.

    The stock connection reads an atom's row back before every write and
    rewrites every atom of a flow whenever the flow's own state changes:
    about 110 statements for a 9-task job, each a round trip the engine
    waits for. Here:

    - a change of an atom or a flow is queued and the call returns at once:
      the engine's in-memory detail is the whole truth, and only the
      conductor that holds the job writes it. One writer thread
      (:class:`LogbookWriter`) writes what is queued, in batches, an atom's
      newest state replacing an older one still queued;
    - an atom is written as a whole row (an upsert), so a flow's new atoms
      need no read to tell them from the stored ones;
    - an atom change that only moves its progress (TaskFlow reports 0.0 and
      1.0 around every task) is not written: progress says nothing about what
      has to run again, and the next real change writes it along;
    - a job this process has lost to another conductor (see fencing) writes
      nothing more: its record is the new owner's.

    What this gives up is the last few milliseconds before a crash: a
    conductor killed with changes still queued leaves its job's record as it
    was a batch earlier, and the next conductor re-runs those tasks as it
    re-runs the ones that were running (every task is idempotent). Before a
    job leaves the board, consumed or handed back, the conductor calls
    :meth:`flush`, so the record of a job that is done is whole.
    """

    def __init__(self, backend: Any, stock: impl_sqlalchemy.Connection) -> None:
        """``stock``: TaskFlow's connection on ``backend``, for the calls not made here."""
        self._backend = backend
        self._stock = stock
        self._engine = backend.engine
        self._tables = tf_tables.fetch(sqlalchemy.MetaData())
        self._queued: collections.OrderedDict[str, _Queued] = collections.OrderedDict()
        self._queued_lock = threading.Lock()
        self.writer = LogbookWriter(backend.single_statement_engine, self._tables)
        logbooks, flows, atoms = (
            self._tables.logbooks,
            self._tables.flowdetails,
            self._tables.atomdetails,
        )
        book_uuid: sqlalchemy.BindParameter[str] = sqlalchemy.bindparam("uuid")
        self._read_book = sqlalchemy.select(logbooks).where(logbooks.c.uuid == book_uuid)
        self._read_flows = sqlalchemy.select(flows).where(flows.c.parent_uuid == book_uuid)
        # A join, not "parent_uuid IN (SELECT ...)": SQLite's planner reads the
        # IN form by scanning every atom unless ANALYZE has run (and no one
        # runs it), and the join by the two parent_uuid indexes (indexes.py).
        self._read_atoms = (
            sqlalchemy.select(atoms)
            .join(flows, atoms.c.parent_uuid == flows.c.uuid)
            .where(flows.c.parent_uuid == book_uuid)
        )
        some: sqlalchemy.BindParameter[list[str]] = sqlalchemy.bindparam("uuids", expanding=True)
        self._read_books = sqlalchemy.select(logbooks).where(logbooks.c.uuid.in_(some))
        self._read_books_flows = sqlalchemy.select(flows).where(flows.c.parent_uuid.in_(some))
        self._read_books_atoms = (
            sqlalchemy.select(atoms)
            .join(flows, atoms.c.parent_uuid == flows.c.uuid)
            .where(flows.c.parent_uuid.in_(some))
        )

    # --- handed to TaskFlow's connection: rare, or TaskFlow's schema itself ---

    @property
    def backend(self) -> Any:
        return self._backend

    def close(self) -> None:
        """Nothing: the connection is shared (see SharedConnectionBackend)."""

    def upgrade(self) -> None:
        self._stock.upgrade()

    def clear_all(self) -> None:
        self._stock.clear_all()

    def validate(self, max_retries: int = 0) -> None:
        self._stock.validate(max_retries=max_retries)

    def save_logbook(self, book: models.LogBook) -> models.LogBook:
        return self._stock.save_logbook(book)

    def destroy_logbook(self, book_uuid: str) -> None:
        self._stock.destroy_logbook(book_uuid)

    def get_flows_for_book(self, book_uuid: str, lazy: bool = False) -> Iterator[Any]:
        return self._stock.get_flows_for_book(book_uuid, lazy=lazy)

    def get_flow_details(self, fd_uuid: str, lazy: bool = False) -> Any:
        return self._stock.get_flow_details(fd_uuid, lazy=lazy)

    def get_atom_details(self, ad_uuid: str) -> Any:
        return self._stock.get_atom_details(ad_uuid)

    def get_atoms_for_flow(self, fd_uuid: str) -> Iterator[Any]:
        return self._stock.get_atoms_for_flow(fd_uuid)

    # --- written here ---

    def get_logbook(self, book_uuid: str, lazy: bool = False) -> models.LogBook:
        """TaskFlow's get_logbook, in three statements built once.

        A conductor reads the whole logbook of every job it claims; the stock
        call built its statements anew each time and read each flow's atoms
        in a statement of its own.
        """
        with (
            storage_failure(f"reading logbook '{book_uuid}'"),
            self._engine.connect() as conn,
        ):
            row = conn.execute(self._read_book, {"uuid": book_uuid}).first()
            if row is None:
                raise tf_exc.NotFound(f"No logbook found with uuid '{book_uuid}'")
            book = models.LogBook.from_dict(dict(row._mapping))
            if lazy:
                return book
            flows = list(conn.execute(self._read_flows, {"uuid": book_uuid}))
            atoms = list(conn.execute(self._read_atoms, {"uuid": book_uuid})) if flows else []
        return _assemble_book(row, flows, atoms)

    def get_logbooks(self, lazy: bool = False) -> Iterator[models.LogBook]:
        """Every logbook, in three statements (TaskFlow's: two per logbook),
        each stamped with the job's own last change (see _assemble_book)."""
        tables = self._tables
        with storage_failure("reading logbooks"), self._engine.connect() as conn:
            books = list(conn.execute(sqlalchemy.select(tables.logbooks)))
            flows: dict[str, list[Any]] = collections.defaultdict(list)
            atoms: dict[str, list[Any]] = collections.defaultdict(list)
            if not lazy:
                parents = {}
                for row in conn.execute(sqlalchemy.select(tables.flowdetails)):
                    flows[row.parent_uuid].append(row)
                    parents[row.uuid] = row.parent_uuid
                for row in conn.execute(sqlalchemy.select(tables.atomdetails)):
                    if row.parent_uuid in parents:
                        atoms[parents[row.parent_uuid]].append(row)
        for row in books:
            if lazy:
                yield models.LogBook.from_dict(dict(row._mapping))
            else:
                yield _assemble_book(row, flows[row.uuid], atoms[row.uuid])

    def page_logbooks(
        self,
        query: pages.BookQuery,
        order: pages.Order,
        *,
        limit: int,
        marker: str | None = None,
        after: tuple[Any, str] | None = None,
        count: bool = True,
    ) -> pages.BookPage:
        """One page of the logbooks ``query`` picks, whole (flows and atoms), in ``order``.

        The page starts after the logbook ``marker`` (raising NotFound when
        it is not in the query's scope) or at ``after`` (a position: sort
        value and uuid, which need not exist any more). Four statements
        (five counting): the page's uuids, then its logbooks, flows and atoms.
        """
        with storage_failure("reading a page of logbooks"), self._engine.connect() as conn:
            if marker is not None:
                after = pages.position(conn, self._tables, query, order, marker)
                if after is None:
                    raise tf_exc.NotFound(f"No logbook found with uuid '{marker}' in this list")
            uuids, total, more = pages.page(
                conn, self._tables, query, order, limit=limit, after=after, count=count
            )
            books = self._read_whole(conn, uuids)
        return pages.BookPage([books[uuid] for uuid in uuids if uuid in books], total, more)

    def logbook_ids(self, prefix: str) -> list[str]:
        """The uuids of the logbooks whose uuid begins with ``prefix``, in order."""
        table = self._tables.logbooks
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with storage_failure("finding logbooks by uuid"), self._engine.connect() as conn:
            return list(
                conn.execute(
                    sqlalchemy.select(table.c.uuid)
                    .where(table.c.uuid.like(pattern, escape="\\"))
                    .order_by(table.c.uuid)
                ).scalars()
            )

    def _read_whole(self, conn: sqlalchemy.Connection, uuids: list[str]) -> dict[str, Any]:
        """These logbooks with their flows and atoms, by uuid (in slices: SQLite caps
        the parameters of one statement)."""
        found = {}
        for start in range(0, len(uuids), _SLICE):
            some = uuids[start : start + _SLICE]
            books = list(conn.execute(self._read_books, {"uuids": some}))
            flows: dict[str, list[Any]] = collections.defaultdict(list)
            parents = {}
            for row in conn.execute(self._read_books_flows, {"uuids": some}):
                flows[row.parent_uuid].append(row)
                parents[row.uuid] = row.parent_uuid
            atoms: dict[str, list[Any]] = collections.defaultdict(list)
            if parents:
                for row in conn.execute(self._read_books_atoms, {"uuids": some}):
                    atoms[parents[row.parent_uuid]].append(row)
            for row in books:
                found[row.uuid] = _assemble_book(row, flows[row.uuid], atoms[row.uuid])
        return found

    def update_atom_details(self, atom_detail: Any) -> Any:
        if fencing.fenced(atom_detail.uuid):
            return atom_detail  # the job is another conductor's: its record is theirs
        values = atom_detail.to_dict()
        with self._queued_lock:
            last = self._queued.get(atom_detail.uuid)
        if last is None:
            self._update_atom_now(atom_detail.uuid, values)
            return atom_detail
        if _same_but_progress(last.values, values):
            return atom_detail
        self._queue_atom(atom_detail.uuid, values, last.parent_uuid, last.atom_type)
        return atom_detail

    def update_flow_details(self, flow_detail: Any) -> Any:
        if fencing.fenced(flow_detail.uuid):
            return flow_detail
        self.writer.put_flow(flow_detail.to_dict())
        for atom_detail in flow_detail:
            with self._queued_lock:
                known = atom_detail.uuid in self._queued
            if not known:
                self._queue_atom(
                    atom_detail.uuid,
                    atom_detail.to_dict(),
                    flow_detail.uuid,
                    models.atom_detail_type(atom_detail),
                )
        return flow_detail

    def flush(self, timeout: float = FLUSH_TIMEOUT) -> None:
        """Return once every change queued so far is in the database."""
        self.writer.flush(timeout)

    def find_logbook(
        self, names: list[str], *, carrying: tuple[str, int] | None = None
    ) -> str | None:
        """The uuid of the newest logbook with one of these names, or whose batch
        carries the zone of that name at that serial (``carrying``, see
        zoneflow.storage.job_zones); None if there is none."""
        table = self._tables.logbooks
        found = table.c.name.in_(names)
        if carrying is not None:
            rows = zoneflow_tables.job_zones
            zone_name, serial = carrying
            batches = sqlalchemy.select(rows.c.job_id).where(
                rows.c.zone_name == zone_name, rows.c.serial == serial
            )
            # A union of two index lookups (ix_logbooks_name, ix_job_zones_zone_name).
            named = sqlalchemy.select(table.c.uuid).where(found)
            found = table.c.uuid.in_(sqlalchemy.union_all(named, batches))
        with storage_failure("finding a logbook by name"), self._engine.connect() as conn:
            return conn.execute(
                sqlalchemy.select(table.c.uuid)
                .where(found)
                .order_by(table.c.created_at.desc())
                .limit(1)
            ).scalar()

    def add_logbook(self, book: models.LogBook) -> bool:
        """Write a new logbook with its flows and atoms; False, writing nothing, if
        one with its uuid exists.

        One transaction of three INSERTs. TaskFlow's save_logbook first reads
        the book to tell a new one from an old one, and writes each flow and
        atom in a statement of its own.
        """
        tables = self._tables
        dialect = self._engine.dialect.name
        flows = [dict(flow.to_dict(), parent_uuid=book.uuid) for flow in book]
        atoms = [
            dict(atom.to_dict(), parent_uuid=flow.uuid, atom_type=models.atom_detail_type(atom))
            for flow in book
            for atom in flow
        ]
        with storage_failure(f"saving logbook '{book.uuid}'"), self._engine.begin() as conn:
            # Rows as parameters, not .values(): SQLAlchemy then reuses the
            # statements compiled for the last job.
            added = conn.execute(
                insert(dialect, tables.logbooks).on_conflict_do_nothing(
                    index_elements=[tables.logbooks.c.uuid]
                ),
                book.to_dict(),
            )
            if added.rowcount == 0:
                return False
            if flows:
                conn.execute(sqlalchemy.insert(tables.flowdetails), flows)
            if atoms:
                conn.execute(sqlalchemy.insert(tables.atomdetails), atoms)
        return True

    def update_logbook_meta(
        self, uuid: str, change: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        """Apply ``change`` to a logbook's metadata under its row's lock; the metadata after.

        ``change`` edits the dict it is given and says whether it changed it.
        One transaction, its row locked from read to write (the whole
        database on SQLite), so two conductors cannot both count one attempt;
        TaskFlow's get_logbook and save_logbook took five statements and no lock.
        """
        table = self._tables.logbooks
        doing = f"updating the metadata of logbook '{uuid}'"
        with storage_failure(doing), self._engine.begin() as conn:
            meta = conn.execute(
                sqlalchemy.select(table.c.meta).where(table.c.uuid == uuid).with_for_update()
            ).first()
            if meta is None:
                raise tf_exc.NotFound(f"No logbook found with uuid '{uuid}'")
            meta = dict(meta[0] or {})
            if change(meta):
                conn.execute(
                    sqlalchemy.update(table)
                    .where(table.c.uuid == uuid)
                    .values(meta=meta, updated_at=timeutils.utcnow())
                )
        return meta

    def close_writer(self) -> None:
        self.writer.close()

    def _queue_atom(self, uuid: str, values: dict[str, Any], parent: str, atom_type: str) -> None:
        with self._queued_lock:
            self._queued[uuid] = _Queued(values, parent, atom_type)
            self._queued.move_to_end(uuid)
            while len(self._queued) > WRITTEN_ATOMS_KEPT:
                self._queued.popitem(last=False)
        self.writer.put_atom(dict(values, parent_uuid=parent, atom_type=atom_type))

    def _update_atom_now(self, uuid: str, values: dict[str, Any]) -> None:
        """Write one change of an atom this connection never queued (or forgot)."""
        self.flush()  # an older queued change of this atom must not land after this one
        table = self._tables.atomdetails
        doing = f"updating atom details with uuid '{uuid}'"
        with storage_failure(doing), self._backend.single_statement_engine.begin() as conn:
            done = conn.execute(sqlalchemy.update(table).where(table.c.uuid == uuid).values(values))
        if done.rowcount == 0:
            raise tf_exc.NotFound(f"No atom details found with uuid '{uuid}'")


def _assemble_book(book_row: Any, flow_rows: list[Any], atom_rows: list[Any]) -> models.LogBook:
    """A logbook from its rows, stamped with the time its job last changed.

    TaskFlow's LogBook.add() stamps the book with the time it is read, so a
    job list showed every job updated "now". The job's own time is its row's
    last change (an attempt counted or ended, an outcome recorded) or its
    flow's (a state the engine reached), whichever came last.
    """
    book = models.LogBook.from_dict(dict(book_row._mapping))
    flows = {}
    for row in flow_rows:
        flow = models.FlowDetail.from_dict(dict(row._mapping))
        flows[flow.uuid] = flow
        book.add(flow)
    for row in atom_rows:
        values = dict(row._mapping)
        atom_class = models.atom_detail_class(values.pop("atom_type"))
        flows[values["parent_uuid"]].add(atom_class.from_dict(values))
    stamps = [book_row.updated_at, *(row.updated_at for row in flow_rows)]
    book.updated_at = max((s for s in stamps if s is not None), default=book_row.created_at)
    return book


def _same_but_progress(before: dict[str, Any], after: dict[str, Any]) -> bool:
    if before.keys() != after.keys():
        return False
    for key, value in after.items():
        if key == "meta":
            old, new = before[key] or {}, value or {}
            if {k: v for k, v in old.items() if k not in _PROGRESS_KEYS} != {
                k: v for k, v in new.items() if k not in _PROGRESS_KEYS
            }:
                return False
        elif before[key] != value:
            return False
    return True


class SharedConnectionBackend(impl_sqlalchemy.SQLAlchemyBackend):
    """TaskFlow's SQLAlchemy persistence, handing every caller one lean connection.

    Stock TaskFlow builds a new Connection for every storage call, and with
    it the whole table metadata: more than half the cost of running a job
    (measured in bench/). The Connection holds nothing but the engine, those
    tables, what it last queued and its writer thread (its close() does
    nothing), so one is safe to share, and the process has one writer.
    """

    def __init__(
        self, conf: dict[str, Any], engine: Any = None, single_statement_engine: Any = None
    ) -> None:
        super().__init__(conf, engine=engine)
        self._shared: Any = None
        self._shared_lock = threading.Lock()
        #: For writes of one statement: an autocommit engine where the
        #: database has one (no BEGIN/COMMIT round trips), else the engine.
        self.single_statement_engine = single_statement_engine or self.engine

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close_writer()
        if self.single_statement_engine is not self.engine:
            self.single_statement_engine.dispose()
        super().close()

    def flush(self, timeout: float = FLUSH_TIMEOUT) -> None:
        """Return once every job record change queued in this process is written."""
        with self._shared_lock:
            shared = self._shared
        if shared is not None:
            shared.flush(timeout)

    def get_connection(self) -> Any:
        with self._shared_lock:
            if self._shared is None:
                # TaskFlow's own, checked that the database answers.
                self._shared = LeanConnection(self, super().get_connection())
            return self._shared


def _create(url: str) -> Any:
    if not url.startswith("sqlite"):
        pool = db.pool_options()
        autocommit = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT", **pool)
        conf = {"connection": url, "engine_args": pool}
        backend = SharedConnectionBackend(conf, single_statement_engine=autocommit)
        db.tune_postgresql(backend.engine)
        db.tune_postgresql(autocommit)  # its new connections wait for room too
        return backend
    # TaskFlow's own SQLite engine opens a connection per call and commits
    # with an fsync each time; ours pools connections, uses WAL and takes the
    # write lock up front so concurrent engines queue instead of failing.
    engine = sqlalchemy.create_engine(url)
    db.tune_sqlite(engine, always_immediate=True)
    return SharedConnectionBackend({"connection": url}, engine=engine)


def upgrade() -> None:
    """Create or migrate TaskFlow's logbook tables, then add zoneflow's indexes to them
    (see indexes.py: on a new database the tables exist only from here on)."""
    backend = get_backend()
    with contextlib.closing(backend.get_connection()) as connection:
        connection.upgrade()
    with storage_failure("indexing the logbook tables"), backend.engine.begin() as conn:
        indexes.create(conn)


def reset() -> None:
    """Forget cached backends (tests switch databases)."""
    with _lock:
        for backend in _backends.values():
            backend.close()
        _backends.clear()
