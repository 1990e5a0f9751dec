"""Free local ports and polling until a server is ready."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

HOST = "127.0.0.1"

# Ports handed out by this process: the kernel may offer a port again as soon as
# the probe socket is closed, and two servers of one test must not get the same.
_handed_out: set[int] = set()
_lock = threading.Lock()


def free_port(host: str = HOST) -> int:
    """Return a port on ``host`` that is free for both TCP and UDP right now.

    A DNS server listens on both protocols on one port, so a port that is free
    for TCP only is not good enough. The port is free when this returns; a
    server should bind it soon after.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
        with _lock:
            if port in _handed_out:
                continue
            _handed_out.add(port)
        return port
    raise RuntimeError(f"no port free for both TCP and UDP on {host} after 100 tries")


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
