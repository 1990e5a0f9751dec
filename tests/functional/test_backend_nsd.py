"""The nsd backend against a real NSD: through zoneflow end to end, and on its own.

Assertions are about what NSD answers to DNS queries. NSD applies addzone and
delzone in its server processes a moment after nsd-control returns, so the
backend-only tests wait for the answer to change.
"""

from __future__ import annotations

import json
import pathlib
import socket

import dns.rcode
import pytest

from tests.functional.conftest import NSDFactory
from tests.functional.deployment import Deployment, answer, soa_serial
from tests.functional.fixtures.nsd import NSDServer
from tests.functional.fixtures.ports import HOST, free_port
from tests.support import eventually, make_zone
from zoneflow import exceptions, objects
from zoneflow.backends import get_backend
from zoneflow.backends.impl_nsd import NSDBackend

ZONE = "nsd.example."
LABEL = "nsd-under-test"


def test_zone_lifecycle_through_zoneflow_is_served_by_nsd(
    deployment: Deployment, nsd_factory: NSDFactory
) -> None:
    nsd = nsd_factory(deployment.masters())
    deployment.load_pool(
        {
            "name": "default",
            "ns_records": [{"hostname": "ns1.nsd.example.", "priority": 1}],
            "nameservers": [nsd.nameserver()],
            "targets": [nsd.pool_target(deployment.masters())],
        }
    )
    deployment.start_mdns()
    deployment.start_conductor()

    deployment.cli("zone", "create", ZONE, "--email", "hostmaster@nsd.example", "--wait")
    deployment.cli(
        "recordset", "create", ZONE, f"www.{ZONE}", "A", "--record", "192.0.2.10", "--wait"
    )
    serial = deployment.stored_serial(ZONE)
    assert soa_serial(ZONE, nsd.host, nsd.port) == serial
    assert answer(f"www.{ZONE}", "A", nsd.host, nsd.port) == (dns.rcode.NOERROR, {"192.0.2.10"})

    deployment.cli(
        "recordset", "create", ZONE, f"api.{ZONE}", "A", "--record", "192.0.2.80", "--wait"
    )
    newer = deployment.stored_serial(ZONE)
    assert newer > serial
    assert soa_serial(ZONE, nsd.host, nsd.port) == newer
    assert answer(f"api.{ZONE}", "A", nsd.host, nsd.port) == (dns.rcode.NOERROR, {"192.0.2.80"})
    shown = json.loads(deployment.cli("--json", "zone", "show", ZONE).stdout)
    assert shown["status"] == "ACTIVE"

    deployment.cli("zone", "delete", ZONE, "--wait")
    assert answer(ZONE, "SOA", nsd.host, nsd.port)[0] == dns.rcode.REFUSED
    assert "not configured" in nsd.control("zonestatus", ZONE, check=False).stdout


# --- the backend on its own: NSD's masters lead nowhere, the zone stays empty --


@pytest.fixture
def nsd(nsd_factory: NSDFactory) -> NSDServer:
    return nsd_factory([(HOST, free_port())])


def _backend(nsd: NSDServer, **overrides: object) -> NSDBackend:
    target = objects.PoolTarget(
        id="t1",
        pool_id="p",
        type="nsd",
        description=LABEL,
        masters=(),
        options={**nsd.pool_target()["options"], **overrides},
    )
    backend = get_backend(target)
    assert isinstance(backend, NSDBackend)
    return backend


def _rcode(nsd: NSDServer) -> int:
    return answer(ZONE, "SOA", nsd.host, nsd.port)[0]


def _wait_for_rcode(nsd: NSDServer, rcode: int) -> None:
    # SERVFAIL: NSD has the zone but no data yet; REFUSED: not its zone.
    eventually(lambda: _rcode(nsd) == rcode, timeout=5, what=f"NSD to answer {rcode!r}")


def test_create_and_delete_are_idempotent(nsd: NSDServer) -> None:
    backend = _backend(nsd)
    zone = make_zone(name=ZONE)
    backend.create_zone(zone)
    backend.create_zone(zone)
    _wait_for_rcode(nsd, dns.rcode.SERVFAIL)
    assert "pattern: zoneflow" in nsd.control("zonestatus", ZONE).stdout

    backend.delete_zone(zone)
    backend.delete_zone(zone)
    _wait_for_rcode(nsd, dns.rcode.REFUSED)
    backend.update_zone(zone)


def test_a_stopped_nsd_is_unreachable_and_named(nsd: NSDServer) -> None:
    backend = _backend(nsd)
    nsd.stop()
    zone = make_zone(name=ZONE)
    for call in (lambda: backend.create_zone(zone), lambda: backend.delete_zone(zone)):
        with pytest.raises(exceptions.BackendUnreachable) as caught:
            call()
        message = str(caught.value)
        assert LABEL in message
        assert f"{nsd.host}@{nsd.control_port}" in message
        assert "is nsd running with remote-control enabled" in message


def test_an_unknown_pattern_is_named(nsd: NSDServer) -> None:
    backend = _backend(nsd, pattern="no-such-pattern")
    with pytest.raises(exceptions.BackendError) as caught:
        backend.create_zone(make_zone(name=ZONE))
    message = str(caught.value)
    assert LABEL in message
    assert "'no-such-pattern'" in message
    assert "define it in nsd.conf" in message
    assert "not configured" in nsd.control("zonestatus", ZONE, check=False).stdout
    assert _rcode(nsd) == dns.rcode.REFUSED


def test_a_missing_config_is_named(nsd: NSDServer, tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "absent.conf"
    with pytest.raises(exceptions.BackendError, match="cannot read") as caught:
        _backend(nsd, nsd_control_config=str(missing)).create_zone(make_zone(name=ZONE))
    assert str(missing) in str(caught.value)


def test_a_missing_control_key_is_called_a_tls_problem(
    nsd: NSDServer, tmp_path: pathlib.Path
) -> None:
    config = tmp_path / "nsd.conf"
    missing = tmp_path / "absent.key"
    config.write_text(
        nsd.conf_path.read_text().replace(str(nsd.workdir / "nsd_control.key"), str(missing))
    )
    with pytest.raises(exceptions.BackendError, match="do not agree on TLS") as caught:
        _backend(nsd, nsd_control_config=str(config)).create_zone(make_zone(name=ZONE))
    assert str(missing) in str(caught.value)
    assert "nsd-control-setup" in str(caught.value)


def test_a_control_port_that_never_answers_times_out(
    nsd: NSDServer, tmp_path: pathlib.Path
) -> None:
    with socket.socket() as silent:
        silent.bind((HOST, 0))
        silent.listen()
        config = tmp_path / "nsd.conf"
        config.write_text(
            nsd.conf_path.read_text().replace(
                f"control-port: {nsd.control_port}", f"control-port: {silent.getsockname()[1]}"
            )
        )
        backend = _backend(nsd, nsd_control_config=str(config), nsd_control_timeout=0.5)
        with pytest.raises(exceptions.BackendUnreachable, match=r"no answer in 0\.5s") as caught:
            backend.create_zone(make_zone(name=ZONE))
    assert LABEL in str(caught.value)
