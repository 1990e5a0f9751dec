"""What the four nameserver fixtures (BIND9, Knot, PowerDNS, NSD) share.

Each listens for DNS on 127.0.0.1 and a port of its own, and has a control
channel (rndc, knotc, an HTTP API, nsd-control) that answers, or refuses, at
once while the server starts.
"""

from __future__ import annotations

import abc
import subprocess
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from zoneflow.local.ports import HOST, free_port
from zoneflow.local.process import ServerProcess


class NameserverProcess(ServerProcess):
    """A DNS server on ``host``:``port``, ready once its control channel and DNS answer."""

    not_ready_errors = (OSError, dns.exception.Timeout, subprocess.TimeoutExpired)

    def __init__(
        self,
        *,
        port: int | None = None,
        workdir: Path | str | None = None,
        start_timeout: float = 60.0,
        host: str = HOST,
    ) -> None:
        super().__init__(workdir=workdir, start_timeout=start_timeout)
        # Another address than 127.0.0.1 for a client that cannot reach it (another
        # network namespace); only BIND9's fixture offers it so far.
        self.host = host
        self.port = port if port is not None else free_port()

    @abc.abstractmethod
    def control_ready(self) -> bool:
        """Whether the control channel answers (``rndc status``, ``knotc status``...)."""

    def is_ready(self) -> bool:
        # The control channel first: it is refused at once while the server
        # starts, whereas a UDP query to a port nobody listens on yet just
        # waits for its timeout. Any DNS answer then will do, REFUSED included.
        if not self.control_ready():
            return False
        query = dns.message.make_query("probe.invalid.", dns.rdatatype.SOA)
        dns.query.udp(query, self.host, port=self.port, timeout=1.0)
        return True

    @staticmethod
    def run_control(
        argv: list[str], *, check: bool, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """Run a control program; output is text."""
        return subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    def nameserver(self) -> dict[str, Any]:
        """This server as a pool nameserver (``pools.yaml`` style)."""
        return {"host": self.host, "port": self.port}
