"""rndc's control channel spoken by zoneflow itself, against a real named.

What named serves is asked by DNS or by the ``rndc`` program (the fixture's
``Bind9Server.rndc``), never through the client under test.
"""

from __future__ import annotations

import base64
import re
import threading

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.functional.fixtures.bind9 import Bind9Server
from tests.functional.test_bind9_rndc import bind9_backend
from tests.support import make_zone
from zoneflow import exceptions, objects
from zoneflow.backends import rndc_protocol

TIMEOUT = 15.0


def server_key(bind: Bind9Server) -> rndc_protocol.RndcKey:
    text = bind.rndc_key_file.read_text()
    secret = re.search(r'secret "([^"]+)"', text)
    algorithm = re.search(r"algorithm ([\w-]+);", text)
    assert secret is not None and algorithm is not None
    return rndc_protocol.RndcKey("rndc-key", algorithm.group(1), base64.b64decode(secret.group(1)))


def client_of(bind: Bind9Server, **kwargs: float) -> rndc_protocol.Client:
    return rndc_protocol.Client(bind.host, bind.rndc_port, server_key(bind), **kwargs)  # type: ignore[arg-type]


def soa_rcode(bind: Bind9Server, zone: str) -> int:
    query = dns.message.make_query(zone, dns.rdatatype.SOA)
    return dns.query.udp(query, bind.host, port=bind.port, timeout=2).rcode()


def test_addzone_showzone_delzone_over_one_connection(bind9: Bind9Server) -> None:
    (bind9.workdir / "proto.example.db").write_text(
        "$TTL 300\n@ SOA ns.proto.example. h.proto.example. 7 3600 600 86400 60\n"
        "@ NS ns.proto.example.\nns A 192.0.2.1\n"
    )
    kept = client_of(bind9)
    added = kept.call(
        'addzone proto.example. { type primary; file "proto.example.db"; };', timeout=TIMEOUT
    )
    assert added.ok, added.output()
    assert soa_rcode(bind9, "proto.example.") == dns.rcode.NOERROR

    shown = kept.call("showzone proto.example.", timeout=TIMEOUT)
    assert shown.ok and "type primary" in shown.text
    assert shown.text == bind9.rndc("showzone", "proto.example.").stdout.strip()

    again = kept.call(
        'addzone proto.example. { type primary; file "proto.example.db"; };', timeout=TIMEOUT
    )
    assert (again.ok, again.err) == (False, "already exists")

    deleted = kept.call("delzone proto.example.", timeout=TIMEOUT)
    assert deleted.ok, deleted.output()
    assert soa_rcode(bind9, "proto.example.") == dns.rcode.REFUSED
    gone = kept.call("delzone proto.example.", timeout=TIMEOUT)
    assert (gone.ok, gone.err) == (False, "not found")
    assert kept.opened == 1


@pytest.mark.parametrize(
    "command",
    [
        ("status",),
        ("showzone", "missing.example."),
        ("delzone", "missing.example."),
        ("addzone", "bad.example.", "{ type nonsense; };"),
        ("no-such-command",),
    ],
    ids=["status", "showzone-missing", "delzone-missing", "addzone-bad", "unknown"],
)
def test_replies_print_as_the_rndc_program_prints_them(
    bind9: Bind9Server, command: tuple[str, ...]
) -> None:
    reply = client_of(bind9).call(" ".join(command), timeout=TIMEOUT)
    done = bind9.rndc(*command, check=False)
    assert reply.ok == (done.returncode == 0)
    printed = (done.stdout + done.stderr).strip()
    if command == ("status",):
        # Uptime and query counters move between the two calls.
        assert reply.text.splitlines()[0] == printed.splitlines()[0]
    else:
        assert reply.output() == printed


def test_a_wrong_key_is_refused_clearly(bind9: Bind9Server) -> None:
    wrong = rndc_protocol.RndcKey("rndc-key", "hmac-sha256", b"not the server's secret at all!!")
    kept = rndc_protocol.Client(bind9.host, bind9.rndc_port, wrong)
    with pytest.raises(exceptions.RndcClosed, match="closed the connection unanswered"):
        kept.call("status", timeout=TIMEOUT)
    with pytest.raises(exceptions.RndcClosed):
        kept.call('addzone refused.example. { type primary; file "x"; };', timeout=TIMEOUT)
    assert bind9.rndc("showzone", "refused.example.", check=False).returncode != 0


@pytest.mark.parametrize("stop", ["stop", "kill"])
def test_named_restarted_under_a_kept_connection(bind9: Bind9Server, stop: str) -> None:
    backend = bind9_backend(bind9)
    backend.rndc("status")
    kept = rndc_protocol.client(bind9.host, bind9.rndc_port, server_key(bind9))
    opened = kept.opened
    getattr(bind9, stop)()
    bind9.start()  # same ports, same key; the kept connection is dead
    zone = make_zone(name="after-restart.example.")
    backend.create_zone(zone)
    assert "type secondary" in bind9.rndc("showzone", zone.name).stdout
    assert kept.opened == opened + 1
    backend.delete_zone(zone)
    assert bind9.rndc("showzone", zone.name, check=False).returncode != 0


def test_named_down_is_unreachable_then_served_again(bind9: Bind9Server) -> None:
    backend = bind9_backend(bind9)
    backend.rndc("status")
    bind9.stop()
    with pytest.raises(exceptions.BackendUnreachable, match="connection refused"):
        backend.rndc("status")
    bind9.start()
    assert "server is up and running" in backend.rndc("status")


def test_concurrent_calls_from_threads_share_few_connections(bind9: Bind9Server) -> None:
    backend = bind9_backend(bind9)
    zones = [make_zone(name=f"z{i}.threads.example.") for i in range(40)]
    errors: list[BaseException] = []

    def work(part: list[objects.Zone]) -> None:
        try:
            for zone in part:
                backend.create_zone(zone)
                backend.rndc("showzone", zone.name)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(zones[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    for zone in zones:
        assert "type secondary" in bind9.rndc("showzone", zone.name).stdout
    kept = rndc_protocol.client(bind9.host, bind9.rndc_port, server_key(bind9))
    assert kept.opened <= rndc_protocol.DEFAULT_CONNECTIONS


class KeyedBind9(Bind9Server):
    """named whose rndc key uses another HMAC algorithm than the fixture's."""

    def __init__(self, algorithm: str) -> None:
        super().__init__()
        self.algorithm = algorithm

    def prepare(self) -> None:
        super().prepare()
        for path in (self.rndc_key_file, self.rndc_conf_file):
            path.write_text(path.read_text().replace("hmac-sha256", self.algorithm))


@pytest.mark.parametrize("algorithm", ["hmac-md5", "hmac-sha1", "hmac-sha512"])
def test_other_key_algorithms(algorithm: str) -> None:
    bind = KeyedBind9(algorithm).start()
    try:
        backend = bind9_backend(bind)
        zone = make_zone(name=f"{algorithm}.example.")
        backend.create_zone(zone)
        assert "type secondary" in bind.rndc("showzone", zone.name).stdout
        backend.delete_zone(zone)
        assert bind.rndc("showzone", zone.name, check=False).returncode != 0
    finally:
        bind.close()
