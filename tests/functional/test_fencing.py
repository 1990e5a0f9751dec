"""A conductor that lost its ZooKeeper session stops, instead of racing the new owner.

Real ZooKeeper and PostgreSQL. Two ways to lose the session:

- paused: the first conductor is frozen (SIGSTOP) while a slow fake target
  works, long enough for its session to expire; a second conductor resumes
  the job and finishes it. When the first is thawed (SIGCONT), its next
  task finds its claim gone and the flow stops there: no status written over
  the new owner's, and no revert undoing what the new owner did.
- cut off by the network: the first conductor runs in a network namespace
  of its own, joined to the host by a veth pair (it reaches ZooKeeper and a
  real BIND9 on the host's end of the pair, PostgreSQL through its Unix
  socket), and the test drops ZooKeeper's port inside the namespace while
  the conductor polls BIND9, NOTIFYing it again and again. It goes on
  running and reaching BIND9, but must stop NOTIFYing it within the session
  timeout; a conductor outside finishes the job, once.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import re
import signal
from collections.abc import Iterator

import pytest

from tests.functional.conftest import start_server
from tests.functional.deployment import Deployment, fake_calls, fast_and_slow_pool
from tests.functional.fixtures.bind9 import Bind9Server
from tests.functional.fixtures.netns import NetworkNamespace
from tests.functional.fixtures.postgres import PostgresServer
from tests.functional.fixtures.process import ServerError
from tests.functional.fixtures.zookeeper import ZooKeeperServer
from tests.support import eventually, holds
from zoneflow.jobs import steps

ZONE = "fence.example."
SESSION_TIMEOUT = 2
# The first conductor is frozen while it is inside the slow target's call, which
# the test sees as "the fast target's create, and only it, is recorded". That
# window opens when the job starts, before the CLI that posted it has returned:
# at 4 s a busy machine's CLI returned after it had closed (bench/busy_runs.py).
SLOW_SECONDS = 15
# Each wait below ends as soon as its condition holds; its bound is for a loaded machine.

CUT_ZONE = "cut.fence.example."
# The cut-off conductor's session: it must stop changing nameservers within it.
CUT_SESSION_TIMEOUT = 4
# How often a poll NOTIFYs a nameserver that does not serve the serial yet.
RENOTIFY_SECONDS = 0.5
# named -g's log: "04-Dec-2026 22:17:18.863 client @0x7f.. 10.200.3.2#58099: received notify
# for zone 'cut.fence.example'".
NOTIFY_LINE = re.compile(
    r"^(?P<when>\S+ \S+) client @\S+ (?P<source>[0-9.]+)#\d+: "
    r"received notify for zone '(?P<zone>[^']+)'",
    re.MULTILINE,
)


def _status(deployment: Deployment, zone: str = ZONE) -> str | None:
    stored = deployment.stored_zone(zone)
    return stored["status"] if stored else None


def test_a_conductor_thawed_after_losing_its_session_changes_nothing_more(
    tmp_path: pathlib.Path, postgres_database: str, zookeeper: ZooKeeperServer
) -> None:
    record = tmp_path / "calls.jsonl"
    deployment = Deployment(
        tmp_path,
        database=postgres_database,
        zookeeper_hosts=zookeeper.hosts,
        session_timeout=SESSION_TIMEOUT,
    )
    try:
        deployment.load_pool(fast_and_slow_pool("ns1.fence.example.", record, SLOW_SECONDS))
        first = deployment.start_conductor("first")
        deployment.cli("zone", "create", ZONE, "--email", "hostmaster@fence.example")
        eventually(
            lambda: len(fake_calls(record)) == 1, timeout=120, what="the fast target's create"
        )
        # Its step stored too. Frozen between the call and that (while it writes
        # what the target serves), the first conductor holds the zone's rows
        # locked in an open transaction, and the second waits until it thaws.
        fast = steps.on_target("create", fake_calls(record)[0]["target"]).name
        eventually(
            lambda: deployment.step_stored_done(fast), timeout=60, what="the fast step stored"
        )

        deployment.kill("first", signal.SIGSTOP)  # frozen in the slow target's call
        second = deployment.start_conductor("second")
        eventually(
            lambda: _status(deployment) == "ACTIVE",
            timeout=120,
            interval=0.5,
            what="the second conductor to finish the job",
        )
        deployment.kill("first", signal.SIGCONT)
        eventually(
            lambda: "another conductor owns this job" in deployment.log("first"),
            timeout=60,
            what="the thawed conductor to find its claim gone",
        )
        # Room for anything it might still (wrongly) do, watched throughout.
        holds(
            lambda: "Job completed successfully" not in deployment.log("first"),
            1.0,
            interval=0.1,
            what="the thawed conductor not completing the job",
        )

        first_log = deployment.log("first")
        assert "Job completed successfully" not in first_log
        assert _status(deployment) == "ACTIVE"
        calls = fake_calls(record)
        # Only creates: no revert ran on either side. The slow create may
        # have finished once in each process (the overlap tasks must bear).
        assert {c["op"] for c in calls} == {"create"}
        assert {c["pid"] for c in calls} <= {first.pid, second.pid}
        jobs = json.loads(deployment.cli("--json", "job", "list").stdout)
        assert [j["state"] for j in jobs] == ["SUCCESS"]
    finally:
        deployment.kill("first", signal.SIGCONT) if deployment.processes[
            "first"
        ].poll() is None else None
        deployment.close()


@pytest.fixture
def netns() -> Iterator[NetworkNamespace]:
    """A network namespace with a veth pair to the host, removed after the test
    (with whatever still runs inside), whatever its outcome."""
    try:
        namespace = NetworkNamespace()
    except ServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        namespace.create()
        yield namespace
    finally:
        namespace.remove()
    assert not namespace.exists(), f"network namespace {namespace.name} left behind"


def _over_unix_socket(postgres: PostgresServer, url: str) -> str:
    """``url``'s database through the server's Unix socket, which a process in another
    network namespace reaches as well (the socket is a file)."""
    name = url.rsplit("/", 1)[1]
    return (
        f"postgresql+psycopg2://{postgres.superuser}@/{name}"
        f"?host={postgres.workdir}&port={postgres.port}"
    )


def _notifies(bind: Bind9Server, source: str) -> list[datetime.datetime]:
    """When BIND9 received a NOTIFY for CUT_ZONE from ``source``, as its log says."""
    log = bind.log_path.read_text(errors="replace")
    return [
        datetime.datetime.strptime(found["when"], "%d-%b-%Y %H:%M:%S.%f")
        for found in NOTIFY_LINE.finditer(log)
        if found["source"] == source and found["zone"] == CUT_ZONE.rstrip(".")
    ]


def test_a_conductor_cut_off_from_zookeeper_stops_changing_nameservers_and_another_finishes(
    tmp_path: pathlib.Path,
    postgres: PostgresServer,
    postgres_database: str,
    netns: NetworkNamespace,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Both on the host's end of the pair: the namespace reaches nothing else.
    zookeeper = start_server(lambda: ZooKeeperServer(host=netns.host_address))
    bind = start_server(
        lambda: Bind9Server(host=netns.host_address, allow_from=[str(netns.network)])
    )
    deployment = Deployment(
        tmp_path,
        database=_over_unix_socket(postgres, postgres_database),
        zookeeper_hosts=zookeeper.hosts,
        session_timeout=CUT_SESSION_TIMEOUT,
        extra_conf={"flows": {"renotify_interval": RENOTIFY_SECONDS, "poll_timeout": 600}},
    )
    try:
        deployment.load_pool(
            {
                "name": "default",
                "ns_records": [{"hostname": "ns1.fence.example.", "priority": 1}],
                "nameservers": [bind.nameserver()],
                "targets": [bind.pool_target(deployment.masters())],
            }
        )
        cut_off = deployment.start_conductor("cut-off", within=netns.command([]))
        deployment.cli("zone", "create", CUT_ZONE, "--email", "hostmaster@fence.example")
        # No mdns yet: BIND9 added the zone but cannot transfer it, so the conductor
        # polls it, NOTIFYing it every RENOTIFY_SECONDS, from inside the namespace.
        eventually(
            lambda: len(_notifies(bind, netns.address)) >= 2,
            timeout=120,
            what="the conductor in the namespace to poll BIND9, NOTIFYing it",
        )

        netns.block(zookeeper.port)
        cut_at = datetime.datetime.now()
        deployment.start_conductor("outside")
        # The outside conductor claims the job once the cut-off one's session has
        # expired, and polls in its turn: its NOTIFYs come from the host's address.
        eventually(
            lambda: _notifies(bind, netns.host_address),
            timeout=120,
            what="the outside conductor to take the job over",
        )
        deployment.start_mdns()
        eventually(
            lambda: _status(deployment, CUT_ZONE) == "ACTIVE",
            timeout=120,
            interval=0.5,
            what="the outside conductor to finish the job",
        )

        # Still running, still reaching BIND9: it is the fence that stopped it.
        assert cut_off.poll() is None, deployment.log("cut-off")
        seen = _notifies(bind, netns.address)
        holds(
            lambda: _notifies(bind, netns.address) == seen,
            4 * RENOTIFY_SECONDS,
            interval=0.1,
            what="no more NOTIFY from the cut-off conductor",
        )
        stopped_after = (seen[-1] - cut_at).total_seconds()
        with capsys.disabled():
            print(f"\ncut-off conductor's last NOTIFY: {stopped_after:.2f}s after the cut")
        assert stopped_after <= CUT_SESSION_TIMEOUT, (seen, cut_at)
        log = deployment.log("cut-off")
        assert "connection to ZooKeeper lost" in log
        assert "another conductor owns this job" in log
        assert "Job completed successfully" not in log

        # Finished once: one addzone, the job ended once, by the outside conductor.
        added = re.findall(rf"added zone {re.escape(CUT_ZONE)}? in view", bind.log_path.read_text())
        assert len(added) == 1, added
        (job,) = json.loads(deployment.cli("--json", "job", "list").stdout)
        assert (job["state"], job["lost_attempts"], job["failed_attempts"]) == ("SUCCESS", 1, 0)
        shown = json.loads(deployment.cli("--json", "job", "show", job["id"]).stdout)
        assert [run["ended"] for run in shown["runs"]] == ["lost", "finished"]
        assert shown["runs"][0]["step"].startswith("at step poll-for-serial-")
    finally:
        deployment.close()
        bind.close()
        zookeeper.close()
