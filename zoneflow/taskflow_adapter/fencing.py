"""Fencing: a conductor that may have lost its jobs stops changing nameservers.

A conductor's claims live as long as its ZooKeeper session. A conductor that
is paused (SIGSTOP, a long GC or VM pause) or cut off past the session
timeout has lost them: another conductor resumes its jobs. When it runs
again, or while it is cut off and running, it must not go on side by side
with the new owner.

Every run of a job's flow is given, in its store, the :class:`Claim` it
runs under (``fence``: the session id it was claimed under, this process's
:class:`Fence`, and the fence's generation then). Each task with side
effects calls its :meth:`Claim.check` before it acts (a poll before each
NOTIFY it sends again), and reverts ask :meth:`Claim.lost` before undoing
anything:

- a session ZooKeeper has expired (kazoo reports LOST) is fenced for good;
- a connection to ZooKeeper that is lost (kazoo reports SUSPENDED: a
  network cut, a ZooKeeper restart) holds every check until it comes back
  with the same session (go on), or for the session timeout at most: the
  server has expired a session it has not heard from for that long, unless
  it restarted and restored it, so the claims held then are *cut*, fenced
  for good, while the session may live on for the claims made after it
  (hence the generation, moved on at each cut);
- a process that was not running for a while (a heartbeat thread's gap) may
  have lost its session without knowing yet: the task first makes a
  ZooKeeper round trip (same session, connected: go on; else cut).

A fenced task raises :class:`JobFenced` and the flow stops at that task
boundary; its reverts do nothing, since the job belongs to someone else now,
and the persistence backend drops the fenced flow's writes (:func:`fenced`),
so its logbook shows the new owner's run, not the end of the old one.
What remains is the task that was already running when the pause or the
cut began: it finishes once, next to the new owner's run of it, which is
why every task is idempotent.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from kazoo.protocol.states import KazooState

LOG = logging.getLogger(__name__)

# How often the heartbeat thread ticks, and the gap that makes it suspect a pause.
TICK = 0.1
# Logbook entries (flow and atom details) remembered with the session that
# claimed their job; the oldest are forgotten (their jobs are long done).
BOUND_KEPT = 100_000


class JobFenced(Exception):
    """This process's claim on the job ended: another conductor owns it now."""


class Fence:
    def __init__(self, client: Any, session_timeout: float) -> None:
        self.client = client
        self.session_timeout = session_timeout
        self.suspect_after = max(4 * TICK, session_timeout / 3)
        self._lock = threading.Lock()
        # Told when the connection comes back, ends, or a session is cut.
        self._changed = threading.Condition(self._lock)
        self._session = self._current_session()
        self._lost: set[int] = set()
        # Session -> the generation its claims must have been made at, or later, to
        # hold: those made before it was cut are fenced.
        self._cut: dict[int, int] = {}
        self._generation = 0
        # When the connection to ZooKeeper was lost (monotonic), while it is; and
        # whether its session has been cut since (once per loss).
        self._suspended_since: float | None = None
        self._suspension_cut = False
        self._suspect = False
        self._last_tick = time.monotonic()
        self._stopped = threading.Event()
        client.add_listener(self._on_state)
        self._thread = threading.Thread(target=self._heartbeat, name="fence", daemon=True)
        self._thread.start()

    def token(self) -> int | None:
        """The session id jobs claimed now are held under."""
        return self._current_session()

    def generation(self) -> int:
        """The generation jobs claimed now are held at (see _cut)."""
        with self._lock:
            return self._generation

    def lost(self, token: int | None, generation: int = 0) -> bool:
        with self._lock:
            return self._lost_locked(token, generation)

    def check(self, token: int | None, generation: int = 0) -> None:
        """Raise JobFenced unless the session ``token`` still holds this process's claims
        made at ``generation``; while ZooKeeper cannot be reached, wait until it can or
        the session timeout has passed."""
        if token is None:
            return
        self._await_connection(token, generation)
        with self._lock:
            if time.monotonic() - self._last_tick > self.suspect_after:
                self._suspect = True  # we were not running: the heartbeat has not seen it yet
            suspect = self._suspect and not self._lost_locked(token, generation)
        if suspect:
            # Only a round trip tells which session we hold: after a pause
            # kazoo may not have heard yet that the old one expired.
            try:
                self.client.exists_async("/").get(timeout=self.session_timeout)
            except Exception as exc:  # noqa: BLE001 - any failure means "not proven alive"
                LOG.warning("cannot confirm ZooKeeper session %#x: %s", token, exc)
            with self._lock:
                if self._settled(token):
                    self._suspect = False
                else:
                    self._cut_locked(token)
        if self.lost(token, generation):
            raise JobFenced(
                f"ZooKeeper session {token:#x} is gone: another conductor owns this job now"
            )

    def stop(self) -> None:
        self._stopped.set()
        self.client.remove_listener(self._on_state)
        with self._changed:
            self._changed.notify_all()

    # -- what feeds it ---------------------------------------------------------------

    def _lost_locked(self, token: int | None, generation: int) -> bool:
        if token is None:
            return False
        return token in self._lost or generation < self._cut.get(token, 0)

    def _await_connection(self, token: int, generation: int) -> None:
        """Hold a check while the connection that holds ``token`` is lost: until it is
        back, or the session timeout after it was lost (the session then cut)."""
        with self._changed:
            while (
                self._suspended_since is not None
                and self._session == token
                and not self._lost_locked(token, generation)
                and not self._stopped.is_set()
            ):
                left = self._suspended_since + self.session_timeout - time.monotonic()
                if left <= 0:
                    self._cut_suspended_locked()
                    return
                self._changed.wait(left)

    def _cut_suspended_locked(self) -> None:
        """The session timeout passed with no connection: cut the session, once."""
        if self._suspension_cut or self._session is None:
            return
        self._suspension_cut = True
        self._cut_locked(self._session)

    def _cut_locked(self, token: int) -> None:
        """Fence every claim held under ``token`` so far; later ones may hold."""
        self._generation += 1
        self._cut[token] = self._generation
        LOG.warning(
            "ZooKeeper session %#x may have expired (not reached for %.1fs, or after a pause): "
            "its jobs belong to other conductors now; their flows stop at the next task",
            token,
            self.session_timeout,
        )
        self._changed.notify_all()

    def _current_session(self) -> int | None:
        client_id = getattr(self.client, "client_id", None)
        return int(client_id[0]) if client_id else None

    def _settled(self, token: int) -> bool:
        return bool(self.client.connected) and self._current_session() == token

    def _on_state(self, state: str) -> None:
        # Called on kazoo's connection thread: no blocking calls here.
        with self._lock:
            if state == KazooState.LOST and self._session is not None:
                LOG.warning(
                    "ZooKeeper session %#x expired: its jobs belong to other conductors now; "
                    "their flows stop at the next task",
                    self._session,
                )
                self._lost.add(self._session)
                # The id of the next session is known only once it connects.
                self._session = None
                self._suspended_since = None
            elif state == KazooState.SUSPENDED:
                self._suspended_since = time.monotonic()
                self._suspension_cut = False
                LOG.warning(
                    "connection to ZooKeeper lost: this conductor's jobs change nothing "
                    "until it is back, and stop if it is not within %.1fs",
                    self.session_timeout,
                )
            elif state == KazooState.CONNECTED:
                self._session = self._current_session()
                self._suspended_since = None
            self._changed.notify_all()

    def _heartbeat(self) -> None:
        while not self._stopped.wait(TICK):
            now = time.monotonic()
            with self._lock:
                if now - self._last_tick > self.suspect_after:
                    LOG.warning(
                        "this process did not run for %.1fs: checking its ZooKeeper session "
                        "before any further change",
                        now - self._last_tick,
                    )
                    self._suspect = True
                if self._session is None and self.client.connected:
                    self._session = self._current_session()
                if self._suspended_since is not None and (
                    now - self._suspended_since > self.session_timeout
                ):
                    # Fenced even where no task checks: the persistence drops their writes.
                    self._cut_suspended_locked()
                self._last_tick = now


@dataclasses.dataclass(frozen=True)
class Claim:
    """A job's claim as its tasks see it: the session it was claimed under, and
    this process's fence; without a fence (zake, a test calling a task) nothing
    is fenced."""

    token: int | None = None
    fence: Fence | None = None
    generation: int = 0

    def check(self) -> None:
        """Raise JobFenced if this process no longer owns the job."""
        if self.fence is not None:
            self.fence.check(self.token, self.generation)

    def lost(self) -> bool:
        """Whether the job now belongs to another conductor."""
        return self.fence is not None and self.fence.lost(self.token, self.generation)


UNFENCED = Claim()

_fence: Fence | None = None
# Logbook entry -> the session and generation its job was claimed under.
_bound: collections.OrderedDict[str, tuple[int, int]] = collections.OrderedDict()
_bound_lock = threading.Lock()


def install(client: Any, session_timeout: float) -> Fence:
    """Fence this process's jobs on ``client``'s session (one per process)."""
    global _fence
    if _fence is not None:
        _fence.stop()
    _fence = Fence(client, session_timeout)
    return _fence


def uninstall() -> None:
    global _fence
    if _fence is not None:
        _fence.stop()
        _fence = None


def token() -> int | None:
    return None if _fence is None else _fence.token()


def claim() -> Claim:
    """The claim a job claimed now runs under, for its flow's store."""
    if _fence is None:
        return UNFENCED
    return Claim(_fence.token(), _fence, _fence.generation())


def bind(held: Claim, uuids: Iterable[str]) -> None:
    """Remember that these logbook entries belong to a job claimed as ``held``."""
    if held.token is None:
        return
    with _bound_lock:
        for uuid in uuids:
            _bound[uuid] = (held.token, held.generation)
            _bound.move_to_end(uuid)
        while len(_bound) > BOUND_KEPT:
            _bound.popitem(last=False)


def fenced(uuid: str) -> bool:
    """Whether a logbook entry belongs to a job this process no longer owns."""
    if _fence is None:
        return False
    with _bound_lock:
        held = _bound.get(uuid)
    return held is not None and _fence.lost(*held)
