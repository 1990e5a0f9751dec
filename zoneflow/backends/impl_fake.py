"""A backend that keeps zones in memory: unit tests and demos, never production.

Target options inject faults:

``delay``       seconds each call sleeps before doing its work
``fail``        ``create``, ``update``, ``delete`` or ``all`` (or a list): raise BackendError
``fail_times``  fail only the first N calls of a failing kind, then succeed
``unreachable`` true: the failures ``fail`` injects are of a target that does not
                answer (BackendUnreachable), not refusals
``fail_zones``  zone names (or one) every call about which fails: one zone of a
                batch failing
``record_file`` append a JSON line per *completed* call (written after the delay,
                fsynced), so a test that kills a conductor mid-call can tell
                which calls really finished and in which process
``batches``     true: the flows hand it a batch's creates (or deletes) in one
                call, made all or none (a zone of ``fail_zones`` fails the whole call,
                as a server's transaction would); each zone's line then says
                how many zones its call carried (``batch``)
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from zoneflow import exceptions, objects
from zoneflow.backends.base import Backend


class FakeBackend(Backend):
    _lock: ClassVar[threading.Lock] = threading.Lock()
    # target id -> zone name -> serial, shared by every instance in the process
    _zones: ClassVar[dict[str, dict[str, int]]] = {}
    # (target id, operation) -> failures injected so far
    _failures: ClassVar[dict[tuple[str, str], int]] = {}

    @classmethod
    def served(cls, target_id: str) -> dict[str, int]:
        with cls._lock:
            return dict(cls._zones.get(target_id, {}))

    @classmethod
    def reset(cls) -> None:
        with cls._lock:
            cls._zones.clear()
            cls._failures.clear()

    def __init__(self, target: objects.PoolTarget) -> None:
        super().__init__(target)
        self.batches = bool(target.options.get("batches", False))

    def create_zone(self, zone: objects.Zone) -> None:
        self._apply("create", [zone])

    def create_zones(self, zones: Sequence[objects.Zone]) -> None:
        if not self.batches:
            super().create_zones(zones)
            return
        self._apply("create", zones)

    def delete_zones(self, zones: Sequence[objects.Zone]) -> None:
        if not self.batches:
            super().delete_zones(zones)
            return
        self._apply("delete", zones)

    def _apply(self, op: str, zones: Sequence[objects.Zone]) -> None:
        """``op`` of every one of ``zones`` or of none, in one call."""
        self._pause_or_fail(op)
        failing = [zone.name for zone in zones if zone.name in self._failing_zones()]
        if failing:
            raise exceptions.BackendError(
                self.target.label, f"injected failure of {', '.join(failing)}"
            )
        with self._lock:
            served = self._zones.setdefault(self.target.id, {})
            for zone in zones:
                if op == "delete":
                    served.pop(zone.name, None)
                else:
                    served[zone.name] = zone.serial
        for zone in zones:
            self._record(op, zone, batch=len(zones))

    def update_zone(self, zone: objects.Zone) -> None:
        self._apply("update", [zone])

    def delete_zone(self, zone: objects.Zone) -> None:
        self._apply("delete", [zone])

    def _pause_or_fail(self, op: str) -> None:
        delay = float(self.target.options.get("delay", 0))
        if delay:
            time.sleep(delay)
        self._maybe_fail(op)

    def _failing_zones(self) -> set[str]:
        return _names(self.target.options.get("fail_zones", []))

    def _maybe_fail(self, op: str) -> None:
        fail = self.target.options.get("fail", [])
        kinds = {fail} if isinstance(fail, str) else set(fail)
        if op not in kinds and "all" not in kinds:
            return
        limit = self.target.options.get("fail_times")
        with self._lock:
            count = self._failures.get((self.target.id, op), 0)
            if limit is not None and count >= int(limit):
                return
            self._failures[(self.target.id, op)] = count + 1
        if self.target.options.get("unreachable"):
            raise exceptions.BackendUnreachable(self.target.label, f"injected no answer to {op}")
        raise exceptions.BackendError(self.target.label, f"injected failure of {op}")

    def _record(self, op: str, zone: objects.Zone, *, batch: int = 1) -> None:
        path = self.target.options.get("record_file")
        if not path:
            return
        line: dict[str, Any] = {
            "op": op,
            "zone": zone.name,
            "serial": zone.serial,
            "target": self.target.id,
            "pid": os.getpid(),
            "batch": batch,
        }
        with self._lock, open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def _names(option: Any) -> set[str]:
    return {option} if isinstance(option, str) else set(option)
