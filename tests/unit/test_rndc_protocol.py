"""rndc's wire format, its HMAC, and the client against a scripted peer on 127.0.0.1.

The peer (``Peer``) speaks the protocol from the other end with this
module's own encoder, or sends what a test gives it: truncated, unsigned,
oversized or no replies at all. Every failure must come back as a named
error within the call's timeout, never a hang or an IndexError. That named
itself accepts what we write is tests/functional/test_rndc_protocol.py's job.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.support import eventually
from zoneflow import exceptions
from zoneflow.backends import rndc_protocol as rp

KEY = rp.RndcKey("rndc-key", "hmac-sha256", b"0123456789abcdef0123456789abcdef")
OTHER = rp.RndcKey("rndc-key", "hmac-sha256", b"another secret, another secret!!")
MD5 = rp.RndcKey("old-key", "hmac-md5", b"sixteen byte key")

# How BIND's lib/isccc lays out an hmac-sha256 _auth entry before it fills in
# the signature: key "_auth", a table of 99 bytes holding "hsha", binary data
# of 89 bytes whose first is the algorithm's number (163).
ISC_HSHA_PREFIX = bytes(
    [0x05, *b"_auth", 0x02, 0, 0, 0, 0x63, 0x04, *b"hsha", 0x01, 0, 0, 0, 0x59, 163]
)
ISC_HMD5_PREFIX = bytes([0x05, *b"_auth", 0x02, 0, 0, 0, 0x20, 0x04, *b"hmd5", 0x01, 0, 0, 0, 0x16])


# --- tables and messages ------------------------------------------------------------


def test_a_table_reads_back_as_written() -> None:
    table = {
        "_ctrl": {"_ser": 7, "_tim": 1700000000},
        "_data": {"type": "addzone example. { type secondary; };", "raw": b"\x00\xff"},
        "list": ["a", {"nested": "b"}, []],
    }
    assert rp.decode_table(rp.encode_table(table)) == {
        "_ctrl": {"_ser": b"7", "_tim": b"1700000000"},
        "_data": {"type": b"addzone example. { type secondary; };", "raw": b"\x00\xff"},
        "list": [b"a", {"nested": b"b"}, []],
    }


def test_the_auth_entry_is_laid_out_as_bind_lays_it_out() -> None:
    message = rp.encode_message(KEY, {"_ser": 1, "_tim": 2, "_exp": 3}, {"type": "null"})
    (length, version) = struct.unpack(">II", message[:8])
    assert length == len(message) - 4 and version == 1
    assert message[8 : 8 + len(ISC_HSHA_PREFIX)] == ISC_HSHA_PREFIX
    md5 = rp.encode_message(MD5, {"_ser": 1}, {"type": "null"})
    assert md5[8 : 8 + len(ISC_HMD5_PREFIX)] == ISC_HMD5_PREFIX


def test_the_signature_is_base64_of_the_hmac_of_what_follows_auth() -> None:
    message = rp.encode_message(KEY, {"_ser": 1}, {"type": "status"})
    signature = message[8 + len(ISC_HSHA_PREFIX) : 8 + len(ISC_HSHA_PREFIX) + 88]
    signed = message[8 + len(ISC_HSHA_PREFIX) + 88 :]
    digest = hmac.new(KEY.secret, signed, hashlib.sha256).digest()
    text = base64.b64encode(digest)
    assert signature == text + b"\0" * (88 - len(text))
    assert len(text) == 44  # padding included, as BIND writes it

    md5 = rp.encode_message(MD5, {"_ser": 1}, {"type": "status"})
    md5_signature = md5[8 + len(ISC_HMD5_PREFIX) : 8 + len(ISC_HMD5_PREFIX) + 22]
    signed = md5[8 + len(ISC_HMD5_PREFIX) + 22 :]
    expected = base64.b64encode(hmac.new(MD5.secret, signed, hashlib.md5).digest())[:22]
    assert md5_signature == expected


@pytest.mark.parametrize("key", [KEY, MD5], ids=["hmac-sha256", "hmac-md5"])
def test_a_signed_message_decodes_with_its_key_only(key: rp.RndcKey) -> None:
    payload = rp.encode_message(key, {"_ser": 9, "_rpl": 1}, {"type": "status", "text": "ok"})[4:]
    message = rp.decode_message(key, payload)
    assert message.ctrl_number("_ser") == 9
    assert message.data_text("text") == "ok"
    stranger = OTHER if key is KEY else rp.RndcKey("old-key", "hmac-md5", b"another 16 bytes")
    with pytest.raises(exceptions.RndcBadMessage, match="not signed with our key"):
        rp.decode_message(stranger, payload)


def test_a_changed_byte_breaks_the_signature() -> None:
    payload = bytearray(rp.encode_message(KEY, {"_ser": 9}, {"type": "status"})[4:])
    payload[-1] ^= 0x01
    with pytest.raises(exceptions.RndcBadMessage, match="not signed"):
        rp.decode_message(KEY, bytes(payload))


def test_every_truncation_is_a_clear_error() -> None:
    payload = rp.encode_message(KEY, {"_ser": 9, "_rpl": 1}, {"type": "status", "text": "x"})[4:]
    for cut in range(len(payload)):
        with pytest.raises(exceptions.RndcBadMessage, match="truncated|not signed|lacks"):
            rp.decode_message(KEY, payload[:cut])


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (struct.pack(">I", 2), "version 2"),
        (struct.pack(">I", 1) + rp.encode_table({"_ctrl": {}}), "begin with its _auth"),
        (struct.pack(">I", 1) + b"\x05_auth\x09\x00\x00\x00\x00", "unknown value type 9"),
        (struct.pack(">I", 1) + b"\x05_auth\x02\xff\xff\xff\xff", "truncated"),
    ],
    ids=["version", "no-auth-first", "unknown-type", "length-past-the-end"],
)
def test_malformed_messages_say_what_is_wrong(payload: bytes, error: str) -> None:
    with pytest.raises(exceptions.RndcBadMessage, match=error):
        rp.decode_message(KEY, payload)


def test_nesting_is_bounded() -> None:
    value: rp.Encodable = "deep"
    for _ in range(rp.MAX_DEPTH + 2):
        value = {"t": value}
    with pytest.raises(exceptions.RndcBadMessage, match="nested deeper"):
        rp.decode_table(rp.encode_table({"t": value}))


def test_a_key_with_an_unknown_algorithm_is_refused_without_its_secret() -> None:
    with pytest.raises(exceptions.RndcKeyError, match="hmac-sha3.*use one of") as raised:
        rp.RndcKey("k", "hmac-sha3", b"s3cr3t-bytes")
    assert "s3cr3t" not in str(raised.value)
    assert "s3cr3t" not in repr(KEY) and repr(KEY.secret) not in repr(KEY)


def test_a_failed_reply_prints_as_rndc_prints_it() -> None:
    failed = rp.Reply("addzone x. { };", 18, "already exists", "zone 'x' already exists")
    assert failed.output() == "rndc: 'addzone' failed: already exists\nzone 'x' already exists"
    assert not failed.ok
    assert rp.Reply("status", 0, None, "running").output() == "running"


# --- the client against a scripted peer ---------------------------------------


Handler = Callable[["Peer", socket.socket], None]


class Peer:
    """Accepts connections on 127.0.0.1 and runs ``handler`` on each, in a thread."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.accepted = 0
        self.commands: list[str] = []
        self.stopped = threading.Event()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.accepted += 1
            self._conns.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the test closed it first
            self.handler(self, conn)

    def close(self) -> None:
        self.stopped.set()
        self.server.close()
        for conn in self._conns:
            conn.close()


@pytest.fixture
def peer() -> Iterator[Callable[[Handler], Peer]]:
    started: list[Peer] = []

    def start(handler: Handler) -> Peer:
        started.append(Peer(handler))
        return started[-1]

    yield start
    for each in started:
        each.close()


def read_request(conn: socket.socket, key: rp.RndcKey = KEY) -> rp.Message | None:
    header = conn.recv(4, socket.MSG_WAITALL)
    if len(header) < 4:
        return None
    (size,) = struct.unpack(">I", header)
    return rp.decode_message(key, conn.recv(size, socket.MSG_WAITALL))


def answer(conn: socket.socket, request: rp.Message, nonce: int, **data: str) -> None:
    ctrl = {"_ser": request.ctrl["_ser"], "_tim": 1, "_rpl": "1", "_nonce": nonce}
    conn.sendall(rp.encode_message(KEY, ctrl, {"type": request.data["type"], **data}))


def named_like(*, commands_per_connection: int = 1000) -> Handler:
    """A peer that answers as named does: a nonce first, then each command."""

    def handle(peer: Peer, conn: socket.socket) -> None:
        nonce = 4242
        hello = read_request(conn)
        assert hello is not None and hello.data_text("type") == "null"
        answer(conn, hello, nonce, result="0")
        for _ in range(commands_per_connection):
            request = read_request(conn)
            if request is None:
                return
            assert request.ctrl_number("_nonce") == nonce
            peer.commands.append(request.data_text("type") or "")
            answer(conn, request, nonce, result="0", text=f"did {request.data_text('type')}")
        conn.close()

    return handle


def client(port: int, **kwargs: float) -> rp.Client:
    return rp.Client("127.0.0.1", port, KEY, **kwargs)  # type: ignore[arg-type]


def test_commands_share_one_connection(peer: Callable[[Handler], Peer]) -> None:
    server = peer(named_like())
    kept = client(server.port)
    assert kept.call("status", timeout=5).text == "did status"
    assert kept.call("showzone x.", timeout=5).text == "did showzone x."
    assert server.accepted == kept.opened == 1
    assert server.commands == ["status", "showzone x."]


def test_a_connection_the_server_closed_is_replaced_once(
    peer: Callable[[Handler], Peer],
) -> None:
    server = peer(named_like(commands_per_connection=1))
    kept = client(server.port)
    for _ in range(3):
        assert kept.call("status", timeout=5).ok
    assert server.accepted == 3
    assert server.commands == ["status"] * 3


def test_a_connection_idle_too_long_is_not_used(peer: Callable[[Handler], Peer]) -> None:
    server = peer(named_like())
    kept = client(server.port, idle=0.0)
    kept.call("status", timeout=5)
    kept.call("status", timeout=5)
    assert server.accepted == 2


def test_a_silent_server_times_out_in_time(peer: Callable[[Handler], Peer]) -> None:
    server = peer(lambda peer, conn: peer.stopped.wait(30) and None)
    began = time.monotonic()
    with pytest.raises(exceptions.RndcTimeout):
        client(server.port).call("status", timeout=0.5)
    assert time.monotonic() - began < 5


def test_a_server_closing_at_once_is_a_refusal(peer: Callable[[Handler], Peer]) -> None:
    server = peer(lambda peer, conn: conn.close())
    with pytest.raises(exceptions.RndcClosed):
        client(server.port).call("status", timeout=5)


def test_a_refused_port_is_a_connect_error() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(exceptions.RndcConnectFailed, match="refused") as raised:
        client(port).call("status", timeout=5)
    assert raised.value.reason == "connection refused"


def raw_reply(reply: bytes, *, then_wait: bool = False) -> Handler:
    def handle(peer: Peer, conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(reply)
        if then_wait:
            peer.stopped.wait(30)
        conn.close()

    return handle


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (struct.pack(">I", 100) + b"short", "truncated reply.*5 of 100"),
        (struct.pack(">I", rp.MAX_REPLY + 1), "announced"),
        (b"\x00\x00", "closed.*unanswered|truncated"),
        (
            rp.encode_message(OTHER, {"_ser": 1, "_rpl": 1, "_nonce": 1}, {"type": "null"}),
            "not signed with our key",
        ),
        (struct.pack(">I", 12) + struct.pack(">I", 1) + b"\x05_auth\x02\x00", "truncated"),
    ],
    ids=["truncated", "oversized", "cut-length", "wrong-key", "garbage"],
)
def test_a_bad_reply_is_a_clear_error(
    peer: Callable[[Handler], Peer], reply: bytes, error: str
) -> None:
    server = peer(raw_reply(reply))
    with pytest.raises((exceptions.RndcBadMessage, exceptions.RndcClosed), match=error):
        client(server.port).call("status", timeout=5)


def test_a_reply_that_stops_midway_times_out_in_time(peer: Callable[[Handler], Peer]) -> None:
    server = peer(raw_reply(struct.pack(">I", 100) + b"part", then_wait=True))
    began = time.monotonic()
    with pytest.raises(exceptions.RndcTimeout):
        client(server.port).call("status", timeout=0.5)
    assert time.monotonic() - began < 5


def test_a_reply_to_another_serial_is_refused(peer: Callable[[Handler], Peer]) -> None:
    def handle(peer: Peer, conn: socket.socket) -> None:
        request = read_request(conn)
        assert request is not None
        ctrl = {"_ser": int(request.ctrl_number("_ser") or 0) + 1, "_rpl": "1", "_nonce": 5}
        conn.sendall(rp.encode_message(KEY, ctrl, {"type": "null"}))
        peer.stopped.wait(30)

    server = peer(handle)
    with pytest.raises(exceptions.RndcBadMessage, match="another message"):
        client(server.port).call("status", timeout=5)


def test_callers_beyond_the_pool_wait_for_a_connection(peer: Callable[[Handler], Peer]) -> None:
    release = threading.Event()

    def slow(peer: Peer, conn: socket.socket) -> None:
        hello = read_request(conn)
        assert hello is not None
        answer(conn, hello, 1, result="0")
        while (request := read_request(conn)) is not None:
            release.wait(30)
            answer(conn, request, 1, result="0")

    server = peer(slow)
    kept = client(server.port, size=1)
    busy = threading.Thread(target=kept.call, args=("status",), kwargs={"timeout": 30})
    busy.start()
    # Once it has connected, the thread above holds the only connection.
    eventually(lambda: server.accepted, timeout=30, what="the first caller to connect")
    with pytest.raises(exceptions.RndcTimeout, match="all 1 connections .* busy"):
        kept.call("status", timeout=0.3)
    release.set()
    busy.join(30)
    assert kept.call("status", timeout=5).ok
    assert server.accepted == 1


def test_clients_are_shared_per_server_and_key() -> None:
    one = rp.client("127.0.0.1", 1, KEY)
    assert rp.client("127.0.0.1", 1, KEY) is one
    assert rp.client("127.0.0.1", 1, OTHER) is not one
    assert rp.client("127.0.0.1", 2, KEY) is not one
    rp.close_all()
    assert rp.client("127.0.0.1", 1, KEY) is not one
