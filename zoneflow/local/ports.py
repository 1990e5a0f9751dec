"""Free local ports and polling until a server is ready."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from zoneflow import exceptions

T = TypeVar("T")

HOST = "127.0.0.1"

# Ports handed out by this process, and when: the kernel may offer a port again
# as soon as the probe socket is closed, and two servers started together must
# not get the same. A port handed out long ago is bound by its server by now (or
# free again because the server has gone), so then the probe alone decides.
_handed_out: dict[int, float] = {}
_REUSE_AFTER = 120.0
_lock = threading.Lock()

# Several processes that pick ports at once (parallel test workers) each know
# only their own _handed_out: each can be given a range of its own, e.g.
# ZONEFLOW_PORT_RANGE=20000-22999, best below the kernel's ephemeral range
# (32768 and up on Linux) so that no outgoing connection takes one either.
PORT_RANGE_ENV = "ZONEFLOW_PORT_RANGE"


def port_range() -> range | None:
    """The ports $ZONEFLOW_PORT_RANGE (``FIRST-LAST``) allows, or None for any."""
    text = os.environ.get(PORT_RANGE_ENV, "").strip()
    if not text:
        return None
    first, _, last = text.partition("-")
    try:
        ports = range(int(first), int(last) + 1)
    except ValueError:
        ports = range(0)
    if not ports or ports.start < 1 or ports.stop > 65536:
        raise exceptions.InvalidConfig(
            f"{PORT_RANGE_ENV}={text!r} is not a range of ports: give FIRST-LAST, e.g. 20000-22999"
        )
    return ports


def _candidates(host: str) -> Iterator[int]:
    """Ports to probe: the configured range, or else what the kernel offers."""
    ports = port_range()
    if ports is None:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                tcp.bind((host, 0))
                port: int = tcp.getsockname()[1]
            yield port  # closed first: the caller probes it
        return
    # A child process inherits the range: starting at a place drawn from the pid
    # keeps a parent's and a child's picks apart.
    start = (os.getpid() * 7919) % len(ports)
    for offset in range(len(ports)):
        yield ports[(start + offset) % len(ports)]


def _bindable(host: str, port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def free_port(host: str = HOST) -> int:
    """Return a port on ``host`` that is free for both TCP and UDP right now.

    A DNS server listens on both protocols on one port, so a port that is free
    for TCP only is not good enough. The port is free when this returns; a
    server should bind it soon after.
    """
    for port in _candidates(host):
        with _lock:
            now = time.monotonic()
            if now - _handed_out.get(port, -_REUSE_AFTER) < _REUSE_AFTER:
                continue
            if not _bindable(host, port):
                continue
            _handed_out[port] = now
        return port
    raise exceptions.LocalServerError(f"no port free for both TCP and UDP on {host}")


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that.

    Exceptions listed in ``ignore`` count as "not yet"; the last one is named in
    the ``TimeoutError`` raised after ``timeout`` seconds. Any other exception
    propagates at once, so a predicate can abort the wait (a server that died).
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
        except ignore as exc:
            last_error = exc
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}{detail}")
        time.sleep(interval)
