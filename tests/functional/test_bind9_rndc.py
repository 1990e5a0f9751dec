"""The bind9 backend against a real named: idempotent, and every rndc failure explained."""

from __future__ import annotations

import base64
import pathlib
import secrets

import pytest

from tests.functional.fixtures.bind9 import Bind9Server
from tests.functional.fixtures.ports import free_port
from tests.support import make_zone
from zoneflow import exceptions, objects
from zoneflow.backends.impl_bind9 import Bind9Backend

ZONE = make_zone(name="rndc.example.", serial=1, status="PENDING", action="CREATE")


def _backend(bind: Bind9Server, **overrides: object) -> Bind9Backend:
    options = {**bind.pool_target([("127.0.0.1", free_port())])["options"], **overrides}
    target = objects.PoolTarget(
        id="t1",
        pool_id="p",
        type="bind9",
        description="bind-under-test",
        masters=(objects.HostPort("127.0.0.1", free_port()),),
        options=options,
    )
    return Bind9Backend(target)


def _zones(bind: Bind9Server) -> str:
    return bind.rndc("showzone", ZONE.name, check=False).stdout


def test_create_and_delete_are_idempotent(bind9: Bind9Server) -> None:
    backend = _backend(bind9)
    backend.create_zone(ZONE)
    backend.create_zone(ZONE)
    assert "type secondary" in _zones(bind9)
    backend.delete_zone(ZONE)
    backend.delete_zone(ZONE)
    assert _zones(bind9) == ""


def test_a_closed_control_port_names_host_and_port(bind9: Bind9Server) -> None:
    port = free_port()
    backend = _backend(bind9, rndc_port=port)
    with pytest.raises(exceptions.BackendUnreachable) as caught:
        backend.create_zone(ZONE)
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "bind-under-test" in str(caught.value)


def test_a_wrong_key_is_called_a_wrong_key_without_showing_it(
    bind9: Bind9Server, tmp_path: pathlib.Path
) -> None:
    secret = base64.b64encode(secrets.token_bytes(32)).decode()
    key = tmp_path / "wrong.key"
    key.write_text(f'key "rndc-key" {{ algorithm hmac-sha256; secret "{secret}"; }};\n')
    with pytest.raises(exceptions.BackendError, match="rndc key does not match") as caught:
        _backend(bind9, rndc_key_file=str(key)).create_zone(ZONE)
    assert secret not in str(caught.value)
    assert _zones(bind9) == ""


def test_a_key_file_that_is_missing_or_not_a_key_is_named(
    bind9: Bind9Server, tmp_path: pathlib.Path
) -> None:
    with pytest.raises(exceptions.BackendError, match="cannot read rndc_key_file"):
        _backend(bind9, rndc_key_file=str(tmp_path / "absent.key")).create_zone(ZONE)
    junk = tmp_path / "junk.key"
    junk.write_text("not a key\n")
    with pytest.raises(exceptions.BackendError, match="holds no 'key"):
        _backend(bind9, rndc_key_file=str(junk)).create_zone(ZONE)
