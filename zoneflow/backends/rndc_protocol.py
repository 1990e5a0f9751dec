"""rndc's control channel spoken directly: ISC's "isccc" messages over kept TCP connections.

Running the ``rndc`` program costs a process per command, tens of
milliseconds of CPU for a command named answers in well under one
(bench/rndc_cost.py). This module says the same thing over connections it
keeps open.

The wire format
---------------

A message is a 4-byte length, then that many bytes: a 4-byte version (1)
and a table. A table is a run of entries: a 1-byte key length, the key, and
a value. A value is 1 byte of type (1 binary data, 2 table, 3 list; 0, a
string, reads as binary data), a 4-byte length and the content. Numbers and
text travel as binary data holding their text (``b"42"``). All integers are
big-endian.

The first entry of every message is ``_auth``: a table holding the HMAC,
under the shared rndc key, of every byte after that entry, in base64. With
hmac-md5 it is ``hmd5``: 22 characters, the padding left off. With the
others it is ``hsha``: one byte, the algorithm's number, then 88 bytes: the
base64 text followed by zero bytes.

Then ``_ctrl``: ``_ser`` (a serial, echoed by the reply), ``_tim`` (when it
was sent, Unix seconds), ``_exp`` (when it expires), ``_nonce``; and
``_data``: ``type``, the command line. A reply adds ``_rpl`` to ``_ctrl`` and
``result`` (named's result code, 0 for success), ``err`` (its text, on
failure) and ``text`` (the command's output) to ``_data``.

The conversation
----------------

A connection begins with the command ``null``, whose reply carries the
nonce named chose for that connection; every later command on it must
carry it. named then answers commands one after another on the connection
until it closes it. It refuses, by closing the connection without a reply:
a message signed with none of its keys, from an address its ``controls``
clause does not allow, with a serial and time it has seen in the last 15
minutes, or sent more than 5 minutes off its own clock.

The client
----------

:func:`client` gives the :class:`Client` for one server and key, shared by
every backend instance in the process (a job's tasks make a new backend
each). It keeps up to ``size`` connections open; a thread takes an idle one
or opens another, and waits when all are busy. A connection named closed
while it sat idle is noticed when a command gets no reply on it, and the
command is sent once more on a new one: only then, when not a byte of reply
came back, and every command zoneflow sends is safe to repeat (``addzone``
of a zone that exists, ``delzone`` of one that is gone, and the reads). A
whole call, waiting for a connection and connecting included, fits in its
``timeout``.
"""

from __future__ import annotations

import base64
import dataclasses
import hmac
import itertools
import os
import secrets
import socket
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TypeAlias

from zoneflow import exceptions

VERSION = 1
BINARY, TABLE, LIST = 1, 2, 3
STRING = 0  # an old type: read as binary data, never written

# The HMAC algorithms of rndc keys: name -> (number on the wire, hashlib name).
ALGORITHMS: dict[str, tuple[int, str]] = {
    "hmac-md5": (157, "md5"),
    "hmac-sha1": (161, "sha1"),
    "hmac-sha224": (162, "sha224"),
    "hmac-sha256": (163, "sha256"),
    "hmac-sha384": (164, "sha384"),
    "hmac-sha512": (165, "sha512"),
}
MD5_SIGNATURE = 22  # base64 of 16 bytes, "==" left off
SHA_SIGNATURE = 88  # base64 of up to 64 bytes, padded with zero bytes

# named reads at most 32 KiB from us; its replies are small too (``status``
# is half a kilobyte), so anything past a few MiB is not a reply.
MAX_REQUEST = 32 * 1024
MAX_REPLY = 4 * 1024 * 1024
MAX_DEPTH = 16
# named refuses a message sent more than 5 minutes off its clock.
EXPIRES = 60

DEFAULT_CONNECTIONS = 4
# A connection idle longer than this is closed rather than used: named 9.18
# closed idle control connections between 30 and 45 s after their last
# command, and a command sent into one it closed costs a retry.
IDLE_SECONDS = 20.0

Value: TypeAlias = "bytes | Table | list[Value]"
Table: TypeAlias = "dict[str, Value]"
# What encode_table takes: text and numbers go as their text.
Encodable: TypeAlias = "bytes | str | int | Mapping[str, Encodable] | Sequence[Encodable]"


# --- keys ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RndcKey:
    """A shared rndc key: its name (unused on the wire), algorithm and secret."""

    name: str
    algorithm: str
    secret: bytes = dataclasses.field(repr=False)

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise exceptions.RndcKeyError(
                f"rndc key {self.name!r} uses algorithm {self.algorithm!r}, which rndc does not "
                f"speak: use one of {', '.join(ALGORITHMS)}"
            )

    @property
    def number(self) -> int:
        return ALGORITHMS[self.algorithm][0]

    def signature(self, signed: bytes) -> bytes:
        """The ``_auth`` value for ``signed``: ``hmd5``'s or ``hsha``'s bytes."""
        digest = hmac.new(self.secret, signed, ALGORITHMS[self.algorithm][1]).digest()
        text = base64.b64encode(digest)
        if self.algorithm == "hmac-md5":
            return text[:MD5_SIGNATURE]
        return bytes([self.number]) + text.ljust(SHA_SIGNATURE, b"\0")

    @property
    def auth_name(self) -> str:
        return "hmd5" if self.algorithm == "hmac-md5" else "hsha"


# --- tables on the wire -------------------------------------------------------


def encode_table(table: Mapping[str, Encodable]) -> bytes:
    """The entries of ``table``, in its order (no type or length of its own)."""
    out = bytearray()
    for key, value in table.items():
        name = key.encode()
        if not 0 < len(name) < 256:
            raise ValueError(f"table key {key!r} must be 1 to 255 bytes")
        out += bytes([len(name)]) + name + _encode_value(value)
    return bytes(out)


def _encode_value(value: Encodable) -> bytes:
    if isinstance(value, Mapping):
        kind, content = TABLE, encode_table(value)
    elif isinstance(value, bytes | str | int):
        kind, content = BINARY, value if isinstance(value, bytes) else str(value).encode()
    else:
        kind, content = LIST, b"".join(_encode_value(item) for item in value)
    return struct.pack(">BI", kind, len(content)) + content


class _Reader:
    """Reads entries and values off bytes, saying where a malformed one went wrong.

    A table's or list's content is read by a reader of its own, so nothing
    inside can reach past the length its container gave it.
    """

    def __init__(self, data: bytes, depth: int = 0) -> None:
        self.data = data
        self.offset = 0
        self.depth = depth

    def take(self, size: int, what: str) -> bytes:
        left = len(self.data) - self.offset
        if size > left:
            raise exceptions.RndcBadMessage(
                f"truncated message: {what} needs {size} bytes, {left} left"
            )
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def table(self) -> Table:
        table: Table = {}
        while self.offset < len(self.data):
            (size,) = self.take(1, "a key's length")
            key = self.take(size, "a key").decode(errors="replace")
            table[key] = self.value(key)
        return table

    def value(self, key: str) -> Value:
        kind, size = struct.unpack(">BI", self.take(5, f"the type and length of {key!r}"))
        content = self.take(size, f"the value of {key!r}")
        if kind in (BINARY, STRING):
            return content
        if kind not in (TABLE, LIST):
            raise exceptions.RndcBadMessage(f"unknown value type {kind} at {key!r}")
        if self.depth >= MAX_DEPTH:
            raise exceptions.RndcBadMessage(f"tables nested deeper than {MAX_DEPTH} at {key!r}")
        inner = _Reader(content, self.depth + 1)
        if kind == TABLE:
            return inner.table()
        items: list[Value] = []
        while inner.offset < len(content):
            items.append(inner.value(key))
        return items


def decode_table(data: bytes) -> Table:
    """A table's entries read back; RndcBadMessage says what is wrong with them."""
    return _Reader(data).table()


# --- messages -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Message:
    """A verified message: its ``_ctrl`` and ``_data`` tables."""

    ctrl: Table
    data: Table

    def ctrl_number(self, name: str) -> int | None:
        value = self.ctrl.get(name)
        if not isinstance(value, bytes):
            return None
        try:
            return int(value)
        except ValueError:
            raise exceptions.RndcBadMessage(f"_ctrl {name} is not a number") from None

    def data_text(self, name: str) -> str | None:
        value = self.data.get(name)
        return value.decode(errors="replace") if isinstance(value, bytes) else None


def encode_message(
    key: RndcKey, ctrl: Mapping[str, Encodable], data: Mapping[str, Encodable]
) -> bytes:
    """A signed message, length first, ready to send."""
    body = encode_table({"_ctrl": ctrl, "_data": data})
    auth = encode_table({"_auth": {key.auth_name: key.signature(body)}})
    payload = struct.pack(">I", VERSION) + auth + body
    return struct.pack(">I", len(payload)) + payload


def decode_message(key: RndcKey, payload: bytes) -> Message:
    """A message's payload (what follows its length), read and its signature checked."""
    reader = _Reader(payload)
    (version,) = struct.unpack(">I", reader.take(4, "the version"))
    if version != VERSION:
        raise exceptions.RndcBadMessage(f"message version {version}, not {VERSION}")
    (size,) = reader.take(1, "the first key's length")
    if reader.take(size, "the first key") != b"_auth":
        raise exceptions.RndcBadMessage("message does not begin with its _auth signature")
    auth = reader.value("_auth")
    signed = payload[reader.offset :]
    got = auth.get(key.auth_name) if isinstance(auth, dict) else None
    if not isinstance(got, bytes) or not hmac.compare_digest(got, key.signature(signed)):
        raise exceptions.RndcBadMessage(
            f"reply not signed with our key ({key.algorithm} {key.name!r}): "
            "is another server listening on that port?"
        )
    rest = reader.table()
    ctrl, data = rest.get("_ctrl"), rest.get("_data")
    if not isinstance(ctrl, dict) or not isinstance(data, dict):
        raise exceptions.RndcBadMessage("message lacks its _ctrl or _data table")
    return Message(ctrl=ctrl, data=data)


@dataclasses.dataclass(frozen=True)
class Reply:
    """named's answer to one command."""

    command: str
    result: int
    err: str | None
    text: str

    @property
    def ok(self) -> bool:
        return self.err is None and self.result == 0

    def output(self) -> str:
        """What the ``rndc`` program prints for it: the failure line, then the text."""
        if self.ok:
            return self.text
        failed = f"rndc: '{self.command.split()[0]}' failed: {self.err or self.result}"
        return f"{failed}\n{self.text}" if self.text else failed


# rndc starts at a random serial; so do we, for named drops a message whose
# serial and time it has seen in the last 15 minutes, from any client.
_serials = itertools.count(secrets.randbits(32))


def _next_serial() -> int:
    return next(_serials) & 0xFFFFFFFF


# --- one connection ----------------------------------------------------------------


class Connection:
    """One authenticated connection: opened, given its nonce, then one command at a time.

    Not for two threads at once: :class:`Client` hands each to one caller.
    """

    def __init__(self, host: str, port: int, key: RndcKey, deadline: float) -> None:
        self.where = f"{host}:{port}"
        self.key = key
        self.nonce: int | None = None
        self.used_at = time.monotonic()
        try:
            self.sock = socket.create_connection((host, port), timeout=_left(deadline, self.where))
        except TimeoutError:
            raise exceptions.RndcTimeout(f"no TCP connection to {self.where} in time") from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise exceptions.RndcConnectFailed(
                f"cannot connect to {self.where}: {reason.lower()}", reason.lower()
            ) from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            hello = self._exchange("null", deadline)
            self.nonce = hello.ctrl_number("_nonce")
            if self.nonce is None:
                raise exceptions.RndcBadMessage("named's first reply carries no _nonce")
        except BaseException:
            self.close()
            raise

    def call(self, command: str, deadline: float) -> Reply:
        """Send ``command`` (an rndc command line) and read named's reply to it."""
        message = self._exchange(command, deadline)
        result = message.data_text("result")
        return Reply(
            command=command,
            result=int(result) if result and result.isdigit() else 0,
            err=message.data_text("err"),
            text=message.data_text("text") or "",
        )

    def close(self) -> None:
        self.sock.close()

    def _exchange(self, command: str, deadline: float) -> Message:
        serial = _next_serial()
        now = int(time.time())
        ctrl: dict[str, Encodable] = {"_ser": serial, "_tim": now, "_exp": now + EXPIRES}
        if self.nonce is not None:
            ctrl["_nonce"] = self.nonce
        request = encode_message(self.key, ctrl, {"type": command})
        if len(request) > MAX_REQUEST:
            raise exceptions.RndcError(
                f"rndc command of {len(request)} bytes: named reads at most {MAX_REQUEST}"
            )
        try:
            self.sock.settimeout(_left(deadline, self.where))
            self.sock.sendall(request)
            (size,) = struct.unpack(">I", self._read(4, deadline, first=True))
            if size > MAX_REPLY:
                raise exceptions.RndcBadMessage(f"reply of {size} bytes announced: not rndc's")
            reply = decode_message(self.key, self._read(size, deadline, first=False))
        except TimeoutError:
            raise exceptions.RndcTimeout(f"no reply from {self.where} in time") from None
        except OSError as exc:  # reset, broken pipe: named dropped it
            raise exceptions.RndcClosed(
                f"{self.where} dropped the connection ({exc.strerror or exc})"
            ) from None
        if reply.ctrl_number("_ser") != serial or "_rpl" not in reply.ctrl:
            raise exceptions.RndcBadMessage(f"reply to another message (serial {serial} sent)")
        self.used_at = time.monotonic()
        return reply

    def _read(self, size: int, deadline: float, *, first: bool) -> bytes:
        chunks = bytearray()
        while len(chunks) < size:
            self.sock.settimeout(_left(deadline, self.where))
            chunk = self.sock.recv(min(size - len(chunks), 65536))
            if not chunk:
                if first and not chunks:
                    raise exceptions.RndcClosed(f"{self.where} closed the connection unanswered")
                raise exceptions.RndcBadMessage(
                    f"truncated reply: the connection closed after {len(chunks)} of {size} bytes"
                )
            chunks += chunk
        return bytes(chunks)


def _left(deadline: float, where: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise exceptions.RndcTimeout(f"no reply from {where} in time")
    return left


# --- kept connections to one server ---------------------------------------------------


class Client:
    """Up to ``size`` kept connections to one named with one key, for any thread."""

    def __init__(
        self,
        host: str,
        port: int,
        key: RndcKey,
        *,
        size: int = DEFAULT_CONNECTIONS,
        idle: float = IDLE_SECONDS,
    ) -> None:
        self.host, self.port, self.key = host, port, key
        self.where = f"{host}:{port}"
        self.size = size
        self.idle = idle
        self._lock = threading.Lock()
        self._free: list[Connection] = []
        self._slots = threading.BoundedSemaphore(size)
        #: Connections opened so far (the rest of the calls reused one).
        self.opened = 0

    def call(self, command: str, *, timeout: float) -> Reply:
        """named's reply to ``command``, within ``timeout`` seconds in all."""
        deadline = time.monotonic() + timeout
        if not self._slots.acquire(timeout=timeout):
            raise exceptions.RndcTimeout(
                f"all {self.size} connections to {self.where} stayed busy for {timeout:g}s"
            )
        try:
            kept = self._take()
            if kept is not None:
                try:
                    return self._finish(kept, kept.call(command, deadline))
                except exceptions.RndcClosed:
                    kept.close()  # closed by named while idle: once more, on a new one
                except BaseException:
                    kept.close()
                    raise
            with self._lock:
                self.opened += 1
            fresh = Connection(self.host, self.port, self.key, deadline)
            try:
                return self._finish(fresh, fresh.call(command, deadline))
            except BaseException:
                fresh.close()
                raise
        finally:
            self._slots.release()

    def close(self, *, idle_only: bool = False) -> None:
        """Close the idle connections: all, or only those idle too long to be used
        again. One in use goes back to the pool when its call ends."""
        with self._lock:
            if idle_only:
                stale = [c for c in self._free if time.monotonic() - c.used_at > self.idle]
            else:
                stale = self._free
            self._free = [c for c in self._free if c not in stale]
        for connection in stale:
            connection.close()

    def _take(self) -> Connection | None:
        with self._lock:
            while self._free:
                connection = self._free.pop()
                if time.monotonic() - connection.used_at <= self.idle:
                    return connection
                connection.close()
        return None

    def _finish(self, connection: Connection, reply: Reply) -> Reply:
        with self._lock:
            self._free.append(connection)
        return reply


_clients: dict[tuple[str, int, str, bytes], Client] = {}
_clients_lock = threading.Lock()
_pruned_at = time.monotonic()


def client(host: str, port: int, key: RndcKey) -> Client:
    """The process's client for ``host``:``port`` with ``key``."""
    global _pruned_at
    with _clients_lock:
        found = _clients.get((host, port, key.algorithm, key.secret))
        if found is None:
            found = _clients[(host, port, key.algorithm, key.secret)] = Client(host, port, key)
        prune = time.monotonic() - _pruned_at > IDLE_SECONDS
        if prune:
            _pruned_at = time.monotonic()
        others = list(_clients.values()) if prune else []
    # Servers no longer called (a retired target, a rotated key, a test's named)
    # would keep their idle sockets, which named has closed, for good.
    for other in others:
        other.close(idle_only=True)
    return found


def close_all() -> None:
    """Close every kept connection of this process."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for each in clients:
        each.close()


def _forget_after_fork() -> None:
    # A forked child must not share its parent's connections (the nonce, the
    # stream): it drops its copies and opens its own.
    global _clients_lock
    _clients_lock = threading.Lock()
    for each in _clients.values():
        for connection in each._free:
            connection.sock.close()
    _clients.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
