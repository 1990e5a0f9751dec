"""A target outage watched by the inspector, on real processes: shared by
tests/functional/test_inspector.py and bench/inspector.py.

A deployment on PostgreSQL (events through LISTEN/NOTIFY) and ZooKeeper,
BIND9 targets behind ``zoneflow mdns``, a ``zoneflow conductor``, ``zoneflow
api`` and ``zoneflow inspector``; an SSE client on ``GET /v2/events`` that
stamps each event with the moment it arrived.
"""

from __future__ import annotations

import json
import pathlib
import queue
import threading
import time
from typing import Any

import dns.exception
import dns.rcode
import httpx

from tests.functional.deployment import Deployment, answer, soa_serial
from tests.functional.fixtures.bind9 import Bind9Server
from tests.support import ADMIN, eventually
from zoneflow.central import pools

POOL = "default"


def deployment(
    workdir: pathlib.Path,
    *,
    database: str,
    zookeeper_hosts: str,
    binds: list[Bind9Server],
    session_timeout: float = 10.0,
    threshold: int = 100,
    poll_timeout: float = 4,
) -> Deployment:
    """Every daemon running, the pool of ``binds`` at ``threshold`` percent."""
    running = Deployment(
        workdir,
        database=database,
        zookeeper_hosts=zookeeper_hosts,
        session_timeout=session_timeout,
        extra_conf={
            "events": {"driver": "postgres"},
            # Under 100 %, a nameserver the inspector has not judged DOWN is waited
            # for poll_timeout seconds before it counts as lagging.
            "flows": {"poll_timeout": poll_timeout},
        },
    )
    running.load_pool(
        {
            "name": POOL,
            "threshold_percentage": threshold,
            "ns_records": [{"hostname": "ns1.outage.example.", "priority": 1}],
            "nameservers": [b.nameserver() for b in binds],
            "targets": [b.pool_target(running.masters()) for b in binds],
        }
    )
    running.start_mdns()
    running.start_conductor()
    running.start_api()
    running.start("inspector", "inspector")
    return running


def target_id(running: Deployment, bind: Bind9Server) -> str:
    entry = bind.pool_target(running.masters())
    return pools.target_id(POOL, "bind9", entry["options"], entry)


class EventStream:
    """A live ``GET /v2/events`` client: each event with the monotonic time it arrived."""

    def __init__(self, url: str, *, types: str) -> None:
        self.received: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self._client = httpx.Client(base_url=url, timeout=httpx.Timeout(30, read=None))
        self._types = types
        self._connected = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self._connected.wait(30):
            raise TimeoutError("GET /v2/events did not answer within 30 s")

    def _read(self) -> None:
        try:
            self._follow()
        except (httpx.HTTPError, OSError):
            if not self._closed:
                raise

    def _follow(self) -> None:
        # Target events concern no project: an operator sees them with all projects.
        headers = {**ADMIN, "X-Auth-All-Projects": "true"}
        with self._client.stream("GET", f"/v2/events?type={self._types}", headers=headers) as live:
            self._connected.set()
            data = ""
            for line in live.iter_lines():
                if line.startswith("data:"):
                    data += line[5:].strip()
                elif not line and data:
                    self.received.put((time.monotonic(), json.loads(data)))
                    data = ""

    def next(self, match: Any, timeout: float) -> tuple[float, dict[str, Any]]:
        """The next event ``match(event)`` accepts (others are dropped), and when it arrived."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                arrived, event = self.received.get(timeout=left)
            except queue.Empty:
                break
            if match(event):
                return arrived, event
        raise TimeoutError(f"no matching event within {timeout:g} s")

    def close(self) -> None:
        self._closed = True
        self._client.close()


def is_target_event(target: str, topic: str, action: str) -> Any:
    return lambda e: (e["type"], e["key"], e["action"]) == (topic, target, action)


def served_everywhere(binds: list[Bind9Server], zone: str, serial: int | None) -> bool:
    """Each BIND9 serves ``zone`` at ``serial`` or later (None: refuses it, deleted)."""
    for bind in binds:
        if serial is None:
            if answer(zone, "SOA", bind.host, bind.port)[0] != dns.rcode.REFUSED:
                return False
        else:
            seen = soa_serial(zone, bind.host, bind.port)
            if seen is None or seen < serial:
                return False
    return True


def wait_served(binds: list[Bind9Server], zone: str, serial: int | None, timeout: float) -> None:
    eventually(
        lambda: served_everywhere(binds, zone, serial),
        timeout=timeout,
        what=f"{zone} at {serial} on every BIND9",
        ignore=(OSError, dns.exception.DNSException),
    )
