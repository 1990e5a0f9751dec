"""A job's poll of one nameserver: quick at first, then less often once it lags."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import dns.flags
import dns.message
import dns.opcode
import dns.rdatatype
import dns.rrset
import pytest

from tests import support
from tests.integration.conftest import fake_pool_yaml
from zoneflow.central import pools
from zoneflow.central import zones as central_zones
from zoneflow.flows.propagation import PollForSerial
from zoneflow.jobs.outcomes import Served

HOST = "127.0.0.1"


class LaggingNameserver:
    """Answers every SOA query with serial 1 (behind any change) and every NOTIFY
    with its reply; notes when each SOA query came."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind((HOST, 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.asked: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, client = self.socket.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            query = dns.message.from_wire(wire)
            answer = dns.message.make_response(query)
            if query.opcode() == dns.opcode.QUERY:
                self.asked.append(time.monotonic())
                question = query.question[0]
                answer.flags |= dns.flags.AA
                answer.answer.append(
                    dns.rrset.from_text(
                        question.name, 300, "IN", "SOA", "ns. host. 1 3600 600 86400 300"
                    )
                )
            self.socket.sendto(answer.to_wire(), client)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.socket.close()


@pytest.fixture
def lagging() -> Iterator[LaggingNameserver]:
    server = LaggingNameserver()
    yield server
    server.close()


def test_a_nameserver_that_lags_past_its_first_notify_is_asked_less_and_less_often(
    lagging: LaggingNameserver, override: Callable[..., None]
) -> None:
    override(
        "flows",
        poll_interval=0.05,
        poll_interval_max=0.4,
        renotify_interval=1.0,
        poll_timeout=4.0,
    )
    listed = f"  nameservers: [{{host: {HOST}, port: {lagging.port}}}]\n"
    support.store_pools(pools.parse(fake_pool_yaml({}) + listed))
    zone = central_zones.create_zone("lagging.example.", "hostmaster@example.com")

    seen = Served(**PollForSerial(HOST, lagging.port).execute(zone.id, zone.name, zone.serial))

    assert not seen.ok and seen.serial == 1, seen
    first = lagging.asked[0]
    early = [t for t in lagging.asked if t - first < 1.0]
    late = [t for t in lagging.asked if t - first >= 1.0]
    gaps = [b - a for a, b in zip(late, late[1:], strict=False)]
    # Every 0.05 s in the first second (20 at most), then waits growing to 0.4 s:
    # about ten in the three seconds after, where a fixed interval asks 60.
    assert len(early) <= 21 and 1 <= len(late) <= 14, (len(early), len(late))
    assert gaps and max(gaps) >= 0.4, gaps
