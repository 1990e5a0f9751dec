"""A pool of nameservers on this machine, for a zoneflow of your own: `zoneflow targets up`.

``start()`` brings up a few servers of one kind under a directory, ``pool()``
describes them as a pools.yaml pool whose targets transfer zones from mdns,
and ``stopped_by_signals()`` makes SIGTERM and SIGHUP stop a foreground
process the way Ctrl-C does, so whoever started the servers stops them
whichever way it is told to end. `make run` uses the same three.
"""

from __future__ import annotations

import contextlib
import pathlib
import shutil
import signal
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any

import yaml

from zoneflow import exceptions
from zoneflow.local.bind9 import Bind9Server
from zoneflow.local.knot import KnotServer

#: A server `start()` returns; each can describe itself as a pools.yaml target.
LocalNameserver = Bind9Server | KnotServer

#: The kinds of server `zoneflow targets up` can run, by pools.yaml target type.
KINDS: dict[str, type[Bind9Server] | type[KnotServer]] = {
    "bind9": Bind9Server,
    "knot": KnotServer,
}

#: Signals that end a foreground run besides Ctrl-C: `kill`'s default, and a
#: closed terminal.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def start(
    kind: str,
    count: int,
    directory: pathlib.Path,
    *,
    notify: Sequence[tuple[str, int]] = (),
) -> list[LocalNameserver]:
    """Start ``count`` fresh ``kind`` servers in ``directory``/KIND-N: all of them, or none.

    BIND9 servers NOTIFY ``notify`` (mdns: doc/backends.md) of each serial they
    load; on Knot servers the backend sets that up zone by zone (its
    ``notify_masters``).
    """
    if kind not in KINDS:
        raise exceptions.InvalidInput(
            f"there is no local server kind {kind!r}: choose one of {', '.join(sorted(KINDS))}"
        )
    if count < 1:
        raise exceptions.InvalidInput(f"cannot start {count} servers: ask for at least 1")
    directory.mkdir(parents=True, exist_ok=True)
    servers: list[LocalNameserver] = []
    try:
        for number in range(1, count + 1):
            workdir = directory / f"{kind}-{number}"
            # Fresh every time: new ports and keys, and no zones left from a
            # pool the database may no longer hold.
            shutil.rmtree(workdir, ignore_errors=True)
            if kind == "bind9":
                server: LocalNameserver = Bind9Server(workdir=workdir, also_notify=notify)
            else:
                server = KINDS[kind](workdir=workdir)
            servers.append(server)
            server.start()
    except BaseException:
        stop(servers)
        raise
    return servers


def stop(servers: Sequence[LocalNameserver]) -> None:
    """Stop every server, the last started first."""
    for server in reversed(servers):
        server.stop()


def pool(
    kind: str,
    servers: Sequence[LocalNameserver],
    masters: list[tuple[str, int]],
    *,
    name: str = "default",
    ns_domain: str = "localhost.",
) -> dict[str, Any]:
    """The pools.yaml pool of ``servers``, each transferring zones from ``masters`` (mdns)."""
    return {
        "name": name,
        "description": f"{len(servers)} local {kind} server(s)",
        "threshold_percentage": 100,
        "ns_records": [
            {"hostname": f"ns{number}.{ns_domain}", "priority": number}
            for number in range(1, len(servers) + 1)
        ],
        "nameservers": [server.nameserver() for server in servers],
        "targets": [server.pool_target(masters) for server in servers],
    }


def write_pools(path: pathlib.Path, pools: list[dict[str, Any]]) -> pathlib.Path:
    """Write ``pools`` as a pools.yaml file at ``path``."""
    path.write_text(yaml.safe_dump(pools, sort_keys=False))
    return path


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def stopped_by_signals() -> Iterator[None]:
    """Inside the block, SIGTERM and SIGHUP raise KeyboardInterrupt in the main thread.

    By default either ends Python at once, skipping every ``finally``: the
    servers, each in a session of its own, would go on holding their ports.
    """
    previous = {sig: signal.signal(sig, _interrupt) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_for_stop() -> None:
    """Block until Ctrl-C, or a stop signal inside ``stopped_by_signals()``."""
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
