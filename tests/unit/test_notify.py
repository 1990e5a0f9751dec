"""NOTIFYs sent in a batch (zoneflow.dns.query.send_notifies): every one on its way
before any reply is awaited, each reply matched to its zone."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import dns.message
import dns.opcode
import dns.rcode
import pytest

from zoneflow.dns import query


class NotifyReceiver:
    """A UDP server in a thread that answers NOTIFYs: NOERROR for ``held`` zones,
    NOTAUTH for others, nothing at all for ``silent`` ones; notes each zone and
    the serial hinted in its NOTIFY."""

    def __init__(self, held: set[str], silent: set[str]) -> None:
        self.held, self.silent = held, silent
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.host, self.port = self.sock.getsockname()
        self.hints: dict[str, int] = {}
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                wire, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            message = dns.message.from_wire(wire)
            assert message.opcode() == dns.opcode.NOTIFY
            name = message.question[0].name.to_text()
            self.hints[name] = message.answer[0][0].serial
            if name in self.silent:
                continue
            reply = dns.message.make_response(message)
            reply.set_rcode(dns.rcode.NOERROR if name in self.held else dns.rcode.NOTAUTH)
            self.sock.sendto(reply.to_wire(), peer)

    def close(self) -> None:
        self.sock.close()
        self._thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[NotifyReceiver]:
    server = NotifyReceiver(
        held={f"z{i}.example." for i in range(30)} - {"z3.example."}, silent={"z5.example."}
    )
    yield server
    server.close()


def test_each_zone_gets_its_own_reply_and_a_silent_one_none(receiver: NotifyReceiver) -> None:
    zones = [(f"z{i}.example.", 100 + i) for i in range(30)]

    rcodes = query.send_notifies(zones, receiver.host, receiver.port, timeout=0.5)

    expected: list[int | None] = [dns.rcode.NOERROR] * 30
    expected[3], expected[5] = dns.rcode.NOTAUTH, None
    assert rcodes == expected
    assert receiver.hints == {name: serial for name, serial in zones}


def test_nothing_listening_gives_no_reply_for_any_zone() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert query.send_notifies([("a.example.", 1), ("b.example.", 2)], "127.0.0.1", port) == [
        None,
        None,
    ]
