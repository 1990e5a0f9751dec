"""The pdns backend against a real pdns_server: through zoneflow end to end, and directly.

Every assertion about serving is a DNS query to PowerDNS, never what the
backend or zoneflow says of itself.
"""

from __future__ import annotations

import http.server
import socket
import threading

import dns.rcode
import pytest

from tests import support
from tests.functional.conftest import Bind9Factory
from tests.functional.deployment import Deployment, answer, soa_serial
from tests.functional.fixtures.bind9 import Bind9Server
from tests.functional.fixtures.pdns import PowerDNSServer
from tests.functional.fixtures.ports import free_port
from tests.support import eventually, make_zone
from zoneflow import exceptions
from zoneflow.backends.impl_pdns import PowerDNSBackend

ZONE = "pdns.example."

PRIMARY_ZONE_TEXT = """\
$TTL 300
@   IN SOA ns1.pdns.example. hostmaster.pdns.example. 2024010101 3600 600 86400 300
@   IN NS  ns1.pdns.example.
ns1 IN A   192.0.2.1
www IN A   192.0.2.80
"""


def test_zone_lifecycle_through_zoneflow_is_served_by_powerdns(
    deployment: Deployment, pdns: PowerDNSServer
) -> None:
    deployment.load_pool(
        {
            "name": "default",
            "ns_records": [{"hostname": "ns1.pdns.example.", "priority": 1}],
            "nameservers": [pdns.nameserver()],
            "targets": [pdns.pool_target(deployment.masters())],
        }
    )
    deployment.start_mdns()
    deployment.start_conductor()

    deployment.cli("zone", "create", ZONE, "--email", "hostmaster@pdns.example", "--wait")
    deployment.cli(
        "recordset", "create", ZONE, f"www.{ZONE}", "A", "--record", "192.0.2.10", "--wait"
    )
    serial = deployment.stored_serial(ZONE)
    assert soa_serial(ZONE, pdns.host, pdns.port) == serial
    assert answer(f"www.{ZONE}", "A", pdns.host, pdns.port) == (dns.rcode.NOERROR, {"192.0.2.10"})

    deployment.cli(
        "recordset", "create", ZONE, f"api.{ZONE}", "A", "--record", "192.0.2.80", "--wait"
    )
    newer = deployment.stored_serial(ZONE)
    assert newer > serial
    assert soa_serial(ZONE, pdns.host, pdns.port) == newer
    assert answer(f"api.{ZONE}", "A", pdns.host, pdns.port)[1] == {"192.0.2.80"}

    deployment.cli("zone", "delete", ZONE, "--wait")
    assert answer(ZONE, "SOA", pdns.host, pdns.port)[0] == dns.rcode.REFUSED
    assert pdns.zone(ZONE) is None


# --- the backend on its own ------------------------------------------------------

ZONE_VALUE = make_zone(name=ZONE, serial=2024010101, status="PENDING", action="CREATE")


def _backend(
    pdns: PowerDNSServer, masters: list[tuple[str, int]] | None = None, **overrides: object
) -> PowerDNSBackend:
    if masters is None:
        masters = [("127.0.0.1", free_port())]
    return PowerDNSBackend(
        support.pool_target(pdns.pool_target(masters), description="pdns-under-test", **overrides)
    )


def _primary(bind: Bind9Server) -> None:
    """Make ``bind`` the primary of ZONE, as mdns would be."""
    (bind.workdir / "pdns.example.zone").write_text(PRIMARY_ZONE_TEXT)
    bind.rndc("addzone", ZONE, '{ type primary; file "pdns.example.zone"; };')


def test_create_serves_the_zone_at_once_and_create_and_delete_are_idempotent(
    pdns: PowerDNSServer, bind9_factory: Bind9Factory
) -> None:
    (primary,) = bind9_factory(1)
    _primary(primary)
    backend = _backend(pdns, [(primary.host, primary.port)])

    backend.create_zone(ZONE_VALUE)
    backend.create_zone(ZONE_VALUE)
    # No NOTIFY is sent here: the zone is served because create asked for a transfer.
    eventually(
        lambda: soa_serial(ZONE, pdns.host, pdns.port) == 2024010101,
        timeout=5,
        what="PowerDNS to serve the zone transferred from BIND9",
    )
    assert answer(f"www.{ZONE}", "A", pdns.host, pdns.port)[1] == {"192.0.2.80"}

    backend.delete_zone(ZONE_VALUE)
    backend.delete_zone(ZONE_VALUE)
    assert answer(ZONE, "SOA", pdns.host, pdns.port)[0] == dns.rcode.REFUSED


def test_create_points_an_existing_secondary_at_the_current_masters(
    pdns: PowerDNSServer,
) -> None:
    _backend(pdns, [("127.0.0.1", free_port())]).create_zone(ZONE_VALUE)
    moved = ("127.0.0.1", free_port())
    _backend(pdns, [moved]).create_zone(ZONE_VALUE)
    found = pdns.zone(ZONE)
    assert found is not None
    assert found["masters"] == [f"{moved[0]}:{moved[1]}"]


def test_a_stopped_server_is_unreachable_and_named(pdns: PowerDNSServer) -> None:
    backend = _backend(pdns)
    pdns.stop()
    for call in (backend.create_zone, backend.delete_zone):
        with pytest.raises(exceptions.BackendUnreachable) as caught:
            call(ZONE_VALUE)
        assert "pdns-under-test" in str(caught.value)
        assert pdns.api_endpoint in str(caught.value)
        assert "connection refused" in str(caught.value)


def test_a_wrong_api_key_is_called_refused_without_showing_it(pdns: PowerDNSServer) -> None:
    wrong = "not-the-key-" + "x" * 20
    backend = _backend(pdns, api_key=wrong)
    for call in (backend.create_zone, backend.delete_zone):
        with pytest.raises(exceptions.BackendError, match="refused the api key") as caught:
            call(ZONE_VALUE)
        assert wrong not in str(caught.value)
        assert pdns.api_key not in str(caught.value)
        assert "pdns-under-test" in str(caught.value)
    assert pdns.zone(ZONE) is None


def test_bad_input_is_explained_with_powerdns_own_words(pdns: PowerDNSServer) -> None:
    with pytest.raises(exceptions.BackendError, match="is not an IP address"):
        _backend(pdns, [("mdns.invalid", 5354)]).create_zone(ZONE_VALUE)
    with pytest.raises(exceptions.BackendError, match="no server 'nope'"):
        _backend(pdns, api_server_id="nope").delete_zone(ZONE_VALUE)
    with pytest.raises(exceptions.BackendError, match="not an http:// or https:// URL"):
        _backend(pdns, api_endpoint="127.0.0.1:8081").delete_zone(ZONE_VALUE)
    assert pdns.zone(ZONE) is None


def test_an_api_that_does_not_answer_times_out_with_a_clear_error(pdns: PowerDNSServer) -> None:
    # A socket that listens but never accepts: the connection is made, no answer comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        backend = _backend(pdns, api_endpoint=f"http://127.0.0.1:{port}", api_timeout=0.5)
        with pytest.raises(exceptions.BackendUnreachable, match="did not answer POST /zones"):
            backend.create_zone(ZONE_VALUE)


class _Flaky(http.server.BaseHTTPRequestHandler):
    """An API answering 500 to its first ``failures`` requests, then 204."""

    failures = 0
    seen: list[str] = []

    def do_DELETE(self) -> None:  # noqa: N802 - http.server's naming
        self.seen.append(self.command)
        code = 500 if len(self.seen) <= self.failures else 204
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.mark.parametrize(("failures", "calls", "fails"), [(1, 2, False), (9, 3, True)])
def test_a_moment_of_500s_is_asked_again_and_a_lasting_one_reported(
    pdns: PowerDNSServer, failures: int, calls: int, fails: bool
) -> None:
    # PowerDNS answers 500 for a moment under load (seen once in CI, on DELETE).
    handler = type("Flaky", (_Flaky,), {"failures": failures, "seen": []})
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as api:
        threading.Thread(target=api.serve_forever, daemon=True).start()
        backend = _backend(pdns, api_endpoint=f"http://127.0.0.1:{api.server_address[1]}")
        try:
            if fails:
                with pytest.raises(exceptions.BackendError, match="DELETE /zones/.* with 500"):
                    backend.delete_zone(ZONE_VALUE)
            else:
                backend.delete_zone(ZONE_VALUE)
        finally:
            api.shutdown()
    assert handler.seen == ["DELETE"] * calls
