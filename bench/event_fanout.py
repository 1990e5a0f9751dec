"""Event fan-out: 100 SSE subscribers on ``GET /v2/events`` while 200 events/s are
published; delivery latency from the publish call to each subscriber reading it.

Three processes, so that none of them takes the others' CPU for its own:

* the API (zoneflow's real HTTP server, uvicorn, ``zoneflow api``'s application);
* the publisher, which calls ``zoneflow.storage.events.append`` (one event per
  transaction, as a conductor's publisher writes a job's end) every 1/rate s,
  the publish time in the event's value;
* the subscribers: ``--subscribers`` keep-alive HTTP connections in one asyncio
  process, as an operator with all projects (no filter), each reading every
  message and noting ``now - sent``.

With the in-process driver (SQLite, the all-in-one default) only the API's own
commits wake its subscribers, so the publisher runs inside the API's process;
with PostgreSQL (LISTEN/NOTIFY) it is a process of its own, as a conductor is.

The advisory lock that keeps event ids in commit order on PostgreSQL
(``storage/events.py``) is measured apart: ``--writers`` threads writing one
event per transaction as fast as they can, with zoneflow's ``write`` and with
the same writes without the lock, in events written per second.

    python bench/event_fanout.py [--subscribers 100] [--rate 200] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pathlib
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402

SENT = re.compile(rb'"sent": ([0-9.]+)')
ALL_PROJECTS = (
    b"X-Auth-Project-ID: ops\r\nX-Roles: admin\r\nX-Auth-All-Projects: true\r\n"
    b"Accept: text/event-stream\r\n"
)


# --- the processes ---------------------------------------------------------------


def _configure(url: str, driver: str) -> Any:
    from oslo_config import cfg

    from tests import support

    database = support.database(url)
    database.__enter__()
    cfg.CONF.set_override("driver", driver, group="events")
    cfg.CONF.set_override("access_log", False, group="api")
    return database


# Events due are written together every TICK seconds, in one transaction, as a
# process's Publisher writes them: one transaction per event could not keep up
# with 200 a second on a busy 2-core machine (the first run reached 61).
TICK = 0.02


def _publish(count: int, rate: float) -> float:
    """Publish ``count`` events at ``rate`` a second, each stamped with its time; the
    rate achieved."""
    from zoneflow.storage import events as stored

    name = stored.publisher_name()
    started = time.monotonic()
    sent = 0
    while sent < count:
        time.sleep(max(0.0, started + sent / rate + TICK - time.monotonic()))
        due = min(count, int((time.monotonic() - started) * rate) + 1)
        batch = [
            stored.NewEvent("zone", "bench", str(i), "UPDATE", {"i": i, "sent": time.time()})
            for i in range(sent, due)
        ]
        stored.append(batch, publisher=name)
        sent = due
    return count / (time.monotonic() - started)


def serve(args: argparse.Namespace) -> None:
    """The API (and, with --publish, the publisher): PORT on stdout, publish on "go"."""
    _configure(args.url, args.driver)
    from zoneflow.api import server

    api = server.ApiServer("127.0.0.1", 0)
    api.start()
    print(f"PORT {api.port}", flush=True)
    for line in sys.stdin:
        if line.strip() == "go" and args.publish:
            print(f"DONE {_publish(args.count, args.rate):.1f}", flush=True)
    api.stop()


def publish(args: argparse.Namespace) -> None:
    _configure(args.url, args.driver)
    for line in sys.stdin:
        if line.strip() == "go":
            print(f"DONE {_publish(args.count, args.rate):.1f}", flush=True)


def _child(*arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _line(process: subprocess.Popen[str], prefix: str) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(prefix):
            return line.split()[1]
    raise RuntimeError(f"the {prefix.lower()} child ended before saying {prefix}")


# --- the subscribers -------------------------------------------------------------


async def _subscriber(
    port: int, ready: asyncio.Event, connected: list[int], latencies: list[float]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /v2/events HTTP/1.1\r\nHost: bench\r\n" + ALL_PROJECTS + b"\r\n")
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"GET /v2/events answered {status!r}")
    await reader.readuntil(b"\r\n\r\n")
    connected.append(1)
    ready.set()
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"data: "):
                found = SENT.search(line)
                if found:
                    latencies.append(time.time() - float(found.group(1)))
    finally:
        writer.close()


async def _fan_out(
    port: int, subscribers: int, go: Any, expected: int, seconds: float
) -> tuple[list[float], int]:
    latencies: list[float] = []
    connected: list[int] = []
    ready = asyncio.Event()
    tasks = [
        asyncio.create_task(_subscriber(port, ready, connected, latencies))
        for _ in range(subscribers)
    ]
    deadline = time.monotonic() + 60
    while len(connected) < subscribers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(connected)} of {subscribers} subscribers connected")
        await asyncio.sleep(0.05)
    await asyncio.get_running_loop().run_in_executor(None, go)
    # Every subscriber gets every event, or the wait ends (what was lost is counted).
    deadline = time.monotonic() + seconds + 30
    while len(latencies) < expected * subscribers and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return latencies, expected * subscribers - len(latencies)


def fan_out(
    server: subprocess.Popen[str], publisher: subprocess.Popen[str], args: argparse.Namespace
) -> tuple[list[float], int, float]:
    port = int(_line(server, "PORT"))
    achieved: list[float] = []

    def go() -> None:
        assert publisher.stdin is not None
        publisher.stdin.write("go\n")
        publisher.stdin.flush()
        achieved.append(float(_line(publisher, "DONE")))

    latencies, lost = asyncio.run(_fan_out(port, args.subscribers, go, args.count, args.seconds))
    return latencies, lost, achieved[0]


@contextlib.contextmanager
def _children(*processes: subprocess.Popen[str]) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            if process.stdin is not None:
                process.stdin.close()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _missing(lost: int, args: argparse.Namespace) -> str:
    return (
        f"{lost} of {args.count * args.subscribers} deliveries not received within "
        f"{args.seconds + 30:.0f} s of the last publish"
    )


# --- the advisory lock -----------------------------------------------------------


def _numbering(on: bool) -> None:
    """Turn the numbering of events by their COMMIT (migration 0018_event_ids_at_commit:
    the advisory lock, each row's id, its NOTIFY) on or off; off, a row takes its id
    from the table's sequence as it is inserted, in no commit order, and no NOTIFY."""
    from zoneflow.storage import db

    with db.transaction() as conn:
        state, default = (
            ("ENABLE", "-nextval('events_pending_id_seq')")
            if on
            else (
                "DISABLE",
                "nextval('events_id_seq')",
            )
        )
        conn.exec_driver_sql(f"ALTER TABLE events {state} TRIGGER events_numbered_at_commit")
        conn.exec_driver_sql(f"ALTER TABLE events ALTER COLUMN id SET DEFAULT {default}")


def writes_per_second(writers: int, seconds: float, *, locked: bool) -> float:
    from zoneflow.storage import events as stored

    if not locked:
        _numbering(False)
    done = [0] * writers
    stop = threading.Event()

    def write(index: int) -> None:
        while not stop.is_set():
            event = stored.NewEvent("zone", "bench", str(index), "UPDATE", {"i": done[index]})
            stored.append([event], publisher="bench-lock")
            done[index] += 1

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    try:
        started = time.monotonic()
        for thread in threads:
            thread.start()
        time.sleep(seconds)  # the measuring window itself, not a wait for a condition
        stop.set()
        for thread in threads:
            thread.join()
        return sum(done) / (time.monotonic() - started)
    finally:
        if not locked:
            _numbering(True)


# --- the run ---------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["bench", "serve", "publish"], default="bench")
    parser.add_argument("--url")
    parser.add_argument("--driver", default="inprocess")
    parser.add_argument("--publish", action="store_true")
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--lock-seconds", type=float, default=5.0)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    args.count = int(args.rate * args.seconds)
    if args.role == "serve":
        serve(args)
        return 0
    if args.role == "publish":
        publish(args)
        return 0

    import tempfile

    from tests.functional.fixtures.postgres import PostgresServer

    common = [
        "--rate",
        str(args.rate),
        "--seconds",
        str(args.seconds),
    ]
    rows: list[tuple[str, list[float]]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{scratch}/bench.sqlite"
        _configure(url, "inprocess")  # migrated once, here
        server = _child("--role", "serve", "--url", url, "--publish", *common)
        with _children(server):
            latencies, lost, achieved = fan_out(server, server, args)
        label = (
            f"in-process driver (SQLite), publisher in the API's process, {achieved:.0f} events/s"
        )
        rows.append((label, latencies))
        notes.append(f"{label}: {_missing(lost, args)}")
        print(report.latency_table(rows), file=sys.stderr)

    with PostgresServer() as postgres:
        url = postgres.create_database("bench")
        _configure(url, "postgres")
        server = _child("--role", "serve", "--url", url, "--driver", "postgres", *common)
        publisher = _child("--role", "publish", "--url", url, "--driver", "postgres", *common)
        with _children(server, publisher):
            latencies, lost, achieved = fan_out(server, publisher, args)
        label = (
            f"PostgreSQL LISTEN/NOTIFY, publisher in a process of its own, {achieved:.0f} events/s"
        )
        rows.append((label, latencies))
        notes.append(f"{label}: {_missing(lost, args)}")
        print(report.latency_table(rows), file=sys.stderr)
        lock_rows = []
        writes_per_second(1, 1.0, locked=True)  # warm the connection pool and the table
        for writers in args.writers:
            # Alternated, twice each, so that the machine's drift falls on both alike.
            runs = {True: [], False: []}  # type: dict[bool, list[float]]
            for locked in (False, True, False, True):
                runs[locked].append(writes_per_second(writers, args.lock_seconds, locked=locked))
            with_lock, without = (sum(runs[k]) / len(runs[k]) for k in (True, False))
            lock_rows.append(
                f"| {writers} | {with_lock:.0f} | {without:.0f} | "
                f"{(1 - with_lock / without) * 100:.0f}% |"
            )
            print(lock_rows[-1], file=sys.stderr)

    body = (
        f"`python bench/event_fanout.py`: {args.subscribers} SSE subscribers on `GET "
        f"/v2/events` (one asyncio process, an operator with all projects, no filter) "
        f"while one publisher writes {args.rate:.0f} events/s for {args.seconds:.0f} s "
        f"(`storage.events.append`, the events due every {TICK * 1000:.0f} ms in one "
        "transaction, as a process's publisher writes them). Delivery: from the "
        "publish call (its time in the event) to a subscriber reading the message; "
        "every subscriber reads every event.\n\n"
        + report.latency_table(rows)
        + "\n"
        + "\n".join(f"- {note}" for note in notes)
        + "\n\nThe advisory lock that keeps event ids in commit order on PostgreSQL: "
        f"events written per second by N threads, one event per transaction, for "
        f"{args.lock_seconds:.0f} s a run, two runs of each alternated (their mean), with "
        "events numbered by their COMMIT (its trigger takes the lock, numbers and "
        "NOTIFYs them) and with that trigger off (ids drawn as rows are inserted, in no "
        "commit order).\n\n"
        "| writers | with the lock (events/s) | without (events/s) | cost |\n"
        "| ---: | ---: | ---: | ---: |\n" + "\n".join(lock_rows) + "\n\n"
        f"Load average (1, 5, 15 min) when done: "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}.\n"
    )
    print(body)
    if not args.no_write:
        report.write_section("event-fanout", "Event fan-out: SSE subscribers", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
