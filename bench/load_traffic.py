"""bench/load.py's traffic: the API client (Designate v2 routes over keep-alive HTTP
connections, read without a web framework) and the load itself, which draws
each change of the mix (create, update, delete) and sends it when due.

Open loop: a change is sent when its arrival is due whether or not earlier
ones were answered, and its latency counts from that due time.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import itertools
import json
import pathlib
import random
import sys
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load_report import WITHIN  # noqa: E402

SUFFIX = "load.example."
EMAIL = "hostmaster@load.example"


class ApiError(Exception):
    """The API did not answer a request (connection lost, or no answer in time)."""


class Api:
    """Keep-alive HTTP/1.1 connections to ``zoneflow api``: a request is made holding one
    of ``slots`` (``size`` of them), so at most ``size`` are in flight at once.

    A few lines of HTTP over asyncio's streams rather than a client library: the
    load generator shares two cores with what it measures, and a library's
    request costs several times the CPU of these.
    """

    # uvicorn closes a connection idle for 5 s: one idle longer than this is dropped.
    IDLE = 3.0

    def __init__(self, host: str, port: int, headers: dict[str, str], size: int) -> None:
        self.host, self.port = host, port
        self._headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.slots = asyncio.Semaphore(size)
        self._idle: list[tuple[float, asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(
        self, method: str, path: str, body: object = None, *, timeout: float = 120.0
    ) -> tuple[int, Any]:
        """The status and JSON body of one request."""
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self._headers}"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode()
        reused, reader, writer = await self._connection()
        try:
            try:
                status, data, keep = await asyncio.wait_for(
                    self._exchange(reader, writer, head + payload), timeout
                )
            except asyncio.IncompleteReadError as exc:
                writer.close()
                if not reused or exc.partial:
                    raise
                # The server closed an idle connection as the request left: it never
                # read it, so it goes again on a new one.
                reader, writer = await asyncio.open_connection(self.host, self.port)
                status, data, keep = await asyncio.wait_for(
                    self._exchange(reader, writer, head + payload), timeout
                )
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            writer.close()
            raise ApiError(f"{method} {path}: {exc!r}") from exc
        if keep:
            self._idle.append((time.monotonic(), reader, writer))
        else:
            writer.close()
        return status, json.loads(data) if data else None

    async def _connection(self) -> tuple[bool, asyncio.StreamReader, asyncio.StreamWriter]:
        while self._idle:
            since, reader, writer = self._idle.pop()
            if time.monotonic() - since < self.IDLE:
                return True, reader, writer
            writer.close()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return False, reader, writer

    @staticmethod
    async def _exchange(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> tuple[int, bytes, bool]:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:] if line)
        }
        if headers.get("transfer-encoding") == "chunked":
            data = await _read_chunked(reader)
        else:
            data = await reader.readexactly(int(headers.get("content-length", "0")))
        return status, data, headers.get("connection", "").lower() != "close"

    async def close(self) -> None:
        for _, _, writer in self._idle:
            writer.close()
        self._idle.clear()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")
    return b"".join(parts)


# -- the changes ---------------------------------------------------------------------


@dataclasses.dataclass
class Change:
    """One arrival of the load: what it asked and what became of it (monotonic times)."""

    index: int
    step: int
    action: str
    due: float
    zone: str = ""
    answered: float | None = None
    status: int | None = None
    serial: int | None = None
    error: str | None = None
    # From the sweeper: every target served it by ``served``, and not yet all by ``before``.
    served: float | None = None
    before: float | None = None
    # A later delete of its zone was served on some target before it was.
    superseded: bool = False
    # The sweeper found it served by the query a target's NOTIFY prompted: served is
    # then within about a millisecond of that target loading it, whatever ``before``.
    by_notify: bool = False
    # When the API's event stream first said the zone was ACTIVE (DELETED) at its serial.
    active: float | None = None

    @property
    def accepted(self) -> bool:
        return self.status == 202

    @property
    def latency(self) -> float | None:
        return None if self.served is None else self.served - self.due


@dataclasses.dataclass
class ZoneMade:
    """A zone this load created: its id, and by id its recordsets' names and latest records."""

    name: str
    id: str
    recordsets: dict[str, tuple[str, list[str]]] = dataclasses.field(default_factory=dict)
    busy: int = 0
    # By recordset id, the zone serial of the change its ``recordsets`` entry holds.
    serials: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Step:
    rate: float
    seconds: float


def mix_shares(mix: dict[str, float] | dict[str, int]) -> tuple[list[str], list[float]]:
    total = sum(mix.values())
    actions = list(mix)
    return actions, list(itertools.accumulate(mix[a] / total for a in actions))


class Load:
    """The open-loop load generator: zones it made stay known from one run to the next."""

    def __init__(self, api: Api, rng: random.Random, *, prefix: str = "z") -> None:
        self.api = api
        self.rng = rng
        self.prefix = prefix
        self.zones: dict[str, ZoneMade] = {}  # live: created and not picked for deletion
        self.deleted: dict[str, ZoneMade] = {}
        self.made = 0
        self.records = 0

    # The next zone or address: names are never reused, so no two changes are confused.
    def _new_zone(self) -> str:
        self.made += 1
        return f"{self.prefix}{self.made:06d}.{SUFFIX}"

    def _new_address(self) -> str:
        self.records += 1
        return f"198.18.{self.records // 250 % 256}.{self.records % 250 + 1}"

    def choose(self, actions: list[str], shares: list[float]) -> str:
        action = actions[bisect.bisect_left(shares, self.rng.random() * shares[-1])]
        if action != "create" and not self.zones:
            return "create"
        return action

    async def send(self, change: Change, *, give_up: float = WITHIN) -> None:
        """Make the change once a connection is free: its zone is chosen then, so that
        arrivals waiting for one hold no zone (and a delete finds one nothing waits on).

        An arrival still waiting ``give_up`` seconds after it was due is not sent: under
        overload the queue would otherwise outlast the run by as long as it ran.
        """
        try:
            await asyncio.wait_for(
                self.api.slots.acquire(), max(0.0, change.due + give_up - time.monotonic())
            )
        except TimeoutError:
            change.error = f"not sent: no connection free within {give_up:g} s"
            return
        try:
            await self._send(change)
        finally:
            self.api.slots.release()

    async def _send(self, change: Change) -> None:
        if change.action == "update" and not self.zones:
            change.action = "create"  # every zone went while this one waited
        if change.action == "delete" and all(z.busy for z in self.zones.values()):
            # Only the first seconds of a run from no zones at all can get here (the
            # benchmark seeds zones first): a zone is made instead of none deleted.
            change.action = "create"
        try:
            if change.action == "create":
                await self._create(change)
            elif change.action == "update":
                await self._update(change)
            else:
                await self._delete(change)
        except ApiError as exc:
            change.error = str(exc)
        change.answered = time.monotonic()

    async def _create(self, change: Change) -> None:
        change.zone = self._new_zone()
        status, body = await self.api.request(
            "POST", "/v2/zones", {"name": change.zone, "email": EMAIL}
        )
        change.status = status
        if status == 202:
            change.serial = int(body["serial"])
            self.zones[change.zone] = ZoneMade(change.zone, body["id"])
        else:
            change.error = _error(body)

    async def _update(self, change: Change) -> None:
        zone = self.zones[self.rng.choice(list(self.zones))]
        change.zone = zone.name
        records = [self._new_address()]
        zone.busy += 1
        try:
            if zone.recordsets and self.rng.random() < 0.5:
                recordset_id = self.rng.choice(list(zone.recordsets))
                path = f"/v2/zones/{zone.id}/recordsets/{recordset_id}"
                status, body = await self.api.request("PUT", path, {"records": records})
            else:
                name = f"r{self.records}.{zone.name}"
                body = {"name": name, "type": "A", "records": records}
                path = f"/v2/zones/{zone.id}/recordsets"
                status, body = await self.api.request("POST", path, body)
        finally:
            zone.busy -= 1
        change.status = status
        if status == 202:
            change.serial = int(body["serial"])
            # Two changes of one recordset in flight at once: the database keeps the one
            # committed last, which has the higher zone serial, whichever answer came last.
            if change.serial >= zone.serials.get(body["id"], 0):
                zone.serials[body["id"]] = change.serial
                zone.recordsets[body["id"]] = (body["name"], records)
        else:
            change.error = _error(body)

    async def _delete(self, change: Change) -> None:
        # The oldest zone with no request in flight: its changes were most likely served.
        zone = next(z for z in self.zones.values() if not z.busy)
        del self.zones[zone.name]
        self.deleted[zone.name] = zone
        change.zone = zone.name
        status, body = await self.api.request("DELETE", f"/v2/zones/{zone.id}")
        change.status = status
        if status != 202:
            change.error = _error(body)


def _error(body: Any) -> str:
    if isinstance(body, dict):
        return f"{body.get('type', '')}: {body.get('message', body)}"
    return repr(body)
