"""One health check: does a nameserver answer DNS at all?

Any DNS answer counts (REFUSED too: a server that refuses a query is up);
no answer within the timeout, or an ICMP port unreachable (the server is
not listening), is a miss. The socket is connected so that the kernel
reports the port unreachable at once as ConnectionRefusedError, instead of
the check waiting out its timeout.
"""

from __future__ import annotations

import socket
import time

import dns.exception
import dns.message
import dns.rdatatype


def check(host: str, port: int, *, timeout: float) -> str | None:
    """None if ``host:port`` answered within ``timeout`` seconds; else why not."""
    # The root's SOA: any server answers it with something (data, REFUSED, SERVFAIL).
    query = dns.message.make_query(".", dns.rdatatype.SOA)
    wire = query.to_wire()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + timeout
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((host, port))
            sock.send(wire)
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                data = sock.recv(65535)
                try:
                    answer = dns.message.from_wire(data)
                except dns.exception.DNSException:
                    continue  # not an answer to our question: keep waiting
                if answer.id == query.id:
                    return None
    except ConnectionRefusedError:
        return f"{host}:{port} refused the query (nothing listens there)"
    except TimeoutError:
        pass
    except OSError as exc:
        return f"{host}:{port} cannot be reached: {exc.strerror or exc}"
    return f"{host}:{port} did not answer within {timeout:g} s"
