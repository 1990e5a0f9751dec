"""mdns as its own process: a burst of queries that arrives while it is busy waits in
the kernel's receive buffer, none dropped there.

A batch of changes on a pool of 8 targets brings mdns 640 datagrams at once (each
target's SOA query and NOTIFY of each of 40 zones). The kernel's default buffer
held 256 small datagrams and dropped the rest, and BIND9 asked again only 5 s
later. Here mdns is stopped (SIGSTOP) while 400 SOA queries arrive, as when all
its threads are busy; the kernel's own count of the datagrams it dropped for
mdns's socket (/proc/net/udp) must stay 0, and every query is answered.
"""

from __future__ import annotations

import os
import pathlib
import selectors
import signal
import socket
import struct
import time

import dns.message
import dns.rcode

from tests import support
from tests.functional.deployment import Deployment
from tests.functional.fixtures.bind9 import Bind9Server
from tests.functional.fixtures.ports import HOST
from zoneflow.storage import db
from zoneflow.storage import pools as stored_pools

QUERIES = 400


def kernel_drops(port: int) -> int:
    """What the kernel dropped for the UDP socket bound to 127.0.0.1:``port``."""
    local = f"0100007F:{port:04X}"
    for line in pathlib.Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local:
            return int(fields[-1])
    raise AssertionError(f"no UDP socket on {HOST}:{port} in /proc/net/udp")


def test_a_burst_while_mdns_is_busy_waits_in_its_socket_none_dropped(
    tmp_path: pathlib.Path,
) -> None:
    database = f"sqlite:///{tmp_path / 'zoneflow.db'}"
    deployment = Deployment(tmp_path, database=database, zookeeper_hosts=None)
    bind = Bind9Server(workdir=tmp_path / "bind")  # named in the pool, never started
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        deployment.load_pool(
            {
                "name": "default",
                "ns_records": [{"hostname": "ns1.burst.test.", "priority": 1}],
                "nameservers": [bind.nameserver()],
                "targets": [bind.pool_target(deployment.masters())],
            }
        )
        with support.database(database, migrated=True):
            [name] = support.bulk_zones(1, pool_id=stored_pools.get_pool("default").id)
            db.get_engine().dispose()
        deployment.start_mdns()
        mdns = deployment.processes["mdns"]
        # Room for every reply on this side too.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        client.connect((HOST, deployment.mdns_port))
        client.setblocking(False)
        queries = {}
        for qid in range(QUERIES):
            query = dns.message.make_query(name, "SOA")
            query.id = qid
            queries[qid] = query.to_wire()
        before = kernel_drops(deployment.mdns_port)

        os.kill(mdns.pid, signal.SIGSTOP)
        try:
            for wire in queries.values():
                client.send(wire)
        finally:
            os.kill(mdns.pid, signal.SIGCONT)
        answered = _replies(client, set(queries), timeout=30)
        dropped = kernel_drops(deployment.mdns_port) - before
        # What mdns let go itself (a query that waited past MAX_UDP_WAIT on a busy
        # machine) is asked again, as a nameserver would: what is tested is the kernel.
        for qid in set(queries) - answered:
            client.send(queries[qid])
        answered |= _replies(client, set(queries) - answered, timeout=30)

        assert dropped == 0, f"the kernel dropped {dropped} of {QUERIES} queries to mdns"
        assert answered == set(queries)
    finally:
        client.close()
        deployment.close()


def _replies(client: socket.socket, waiting: set[int], *, timeout: float) -> set[int]:
    """The ids of the NOERROR replies that came for ``waiting`` within ``timeout``."""
    answered: set[int] = set()
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(client, selectors.EVENT_READ)
        while answered != waiting and (left := deadline - time.monotonic()) > 0:
            if not selector.select(left):
                continue
            wire = client.recv(65535)
            qid, flags = struct.unpack_from("!HH", wire)
            if qid in waiting and flags & 0x000F == dns.rcode.NOERROR:
                answered.add(qid)
    return answered
