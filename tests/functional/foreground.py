"""What a foreground command leaves behind when it is told to stop with a signal.

`make run` and `zoneflow targets up` run servers as children, each in a
session of its own: a signal to the command reaches none of them, so the
command has to stop them itself. These helpers name the children before the
signal and check afterwards that none is alive and no port is held.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
from collections.abc import Iterable

import yaml

from tests.functional.fixtures.ports import HOST
from tests.support import eventually


def children(pid: int) -> set[int]:
    """The pids of ``pid``'s live children (Linux /proc), zombies left out."""
    found: set[int] = set()
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            found.update(int(child) for child in (task / "children").read_text().split())
    return {child for child in found if alive(child)}


def alive(pid: int) -> bool:
    """Whether ``pid`` runs: a zombie (dead, not yet reaped) does not."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    # The state follows the parenthesised command name, which may hold spaces.
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def port_free(port: int) -> bool:
    """Whether both TCP and UDP ``port`` on 127.0.0.1 can be bound now."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            # As a server would: connections in TIME_WAIT do not hold a port.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, port))
            except OSError:
                return False
    return True


def pool_ports(pools_file: pathlib.Path) -> set[int]:
    """Every port the servers of a pools.yaml listen on: DNS, and rndc for BIND9."""
    ports: set[int] = set()
    for pool in yaml.safe_load(pools_file.read_text()):
        for target in pool["targets"]:
            options = target["options"]
            ports.add(int(options["port"]))
            if "rndc_port" in options:
                ports.add(int(options["rndc_port"]))
    return ports


def stop_and_check(
    process: subprocess.Popen[bytes], sig: signal.Signals, servers: set[int], ports: Iterable[int]
) -> int:
    """Send ``sig`` to ``process`` alone; its exit status, once no server or port is left.

    Servers still alive after the check are killed, so a failing test does not
    leave them behind.
    """
    try:
        os.kill(process.pid, sig)
        code = process.wait(timeout=60)
        left = {pid for pid in servers if alive(pid)}
        assert not left, f"{sig.name} left servers running: pids {sorted(left)}"
        # A port is freed by the kernel a moment after its owner is gone.
        eventually(lambda: all(port_free(p) for p in ports), timeout=10, what="ports to be free")
        return code
    finally:
        _kill(servers)


def kill_with_children(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``process`` and the servers it runs (in sessions of their own, a kill of
    the process alone leaves them running)."""
    servers = children(process.pid)
    process.kill()
    process.wait()
    _kill(servers)


def _kill(servers: Iterable[int]) -> None:
    """SIGKILL each of ``servers`` still alive."""
    for pid in servers:
        with contextlib.suppress(ProcessLookupError):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
