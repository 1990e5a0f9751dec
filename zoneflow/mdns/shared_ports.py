"""Client ports that ask two questions at once, and the answers sent to them again.

BIND9 (9.18) sends each UDP request, a refresh's SOA query or a NOTIFY to
mdns, from a socket of its own, connected to mdns, on a port it draws at
random with no check that another of its sockets holds it; its sockets allow
address reuse, so the draw succeeds. Two sockets on one port connected to
mdns are the same pair of addresses to the kernel, which hands every
datagram for that pair to one of them: the other socket's answer reaches a
socket that drops it (BIND9 counts it as a "mismatch response"), and its
request waits for BIND9's retry, 5 s later. It happens between one server's
concurrent requests, and between servers on one host (doc/mdns.md has the
figures).

mdns cannot reach the waiting socket while the other holds the port, but the
other one closes as soon as its own answer is in. So when a port asks a
second question while an earlier one's answer may still be awaited there,
mdns sends every answer it gave that port within ``WINDOW`` again at
``REPEAT_AFTER`` seconds: one copy arrives after the other socket has closed.
A client that got its answer already drops the copies (a reply to a query it
no longer waits for), as DNS clients drop the duplicates a network makes.
Each answer is copied once (at those four times), and a port with more than
``MOST_SHARING`` questions in hand gets no copies: that is one socket asking
many questions (a client that sends all its queries from one socket), which
reads every answer.

A question asked again by the same port with the same id is a client's
retry: ``retries`` counts them, each one an answer that was lost on its way
(or sent too late).
"""

from __future__ import annotations

import collections
import dataclasses
import threading

#: Seconds mdns remembers a port's questions: longer than BIND9's 5-s UDP
#: retry, so that its retry is recognised as one.
WINDOW = 6.0

#: When the copies go, in seconds after the port's second question: the socket
#: holding the port may still wait for its own answer (a NOTIFY's, which mdns
#: may hold a while). Tried by hand on rounds of 40 zones on 8 BIND9 targets
#: (bench/batch_cost.py), copying every SOA answer: one copy at 0.1 s left 7
#: rounds in 10 at 5.7 to 11 s; copies at 0.1, 0.5 and 1.5 s, 1 in 10 (the
#: others 2.0 to 3.2 s). Past 3 s BIND9's own retry is near.
REPEAT_AFTER = (0.1, 0.5, 1.5, 3.0)

#: Questions a port may have in hand and still get copies: BIND9's draws put
#: two sockets on a port, now and then three.
MOST_SHARING = 3

Address = tuple[str, int]


@dataclasses.dataclass
class _Asked:
    query_id: int
    replies: list[bytes]
    copied: bool = False


@dataclasses.dataclass
class _Port:
    """A port's requests within the window, oldest first, and how many of each id."""

    asked: collections.deque[_Asked] = dataclasses.field(default_factory=collections.deque)
    ids: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)


class SharedPorts:
    """What each client port asked within ``WINDOW``, for mdns's UDP answers.

    Safe to call from several threads (mdns answers datagrams on a pool)."""

    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self.shared = 0  # questions from a port with another one of its own in hand
        self.retries = 0  # questions asked again: same port, same id
        self._ports: dict[Address, _Port] = {}
        # (when, port) of every request remembered, oldest first: a port's own
        # requests come in the same order, so the oldest is at its deque's head.
        self._order: collections.deque[tuple[float, Address]] = collections.deque()
        self._lock = threading.Lock()

    def answered(
        self, address: Address, query_id: int, replies: list[bytes], now: float
    ) -> list[bytes]:
        """Note the ``replies`` sent to ``address`` for its query ``query_id``; the
        replies to send it again (this one's and the port's other questions' not
        copied yet), or none when the port has asked nothing else within the
        window, or more than MOST_SHARING questions."""
        with self._lock:
            self._forget(now)
            port = self._ports.setdefault(address, _Port())
            if port.ids[query_id]:
                self.retries += 1
            port.asked.append(_Asked(query_id, replies))
            port.ids[query_id] += 1
            self._order.append((now, address))
            if len(port.ids) < 2 or len(port.ids) > MOST_SHARING:
                return []
            self.shared += 1
            again = [entry for entry in port.asked if not entry.copied]
            for entry in again:
                entry.copied = True
            return [reply for entry in again for reply in entry.replies]

    def _forget(self, now: float) -> None:
        while self._order and now - self._order[0][0] > self.window:
            _, address = self._order.popleft()
            port = self._ports[address]
            oldest = port.asked.popleft().query_id
            port.ids[oldest] -= 1
            if not port.ids[oldest]:
                del port.ids[oldest]
            if not port.asked:
                del self._ports[address]
