"""The bind9 backend against a real named: idempotent, and every rndc failure explained.

Every test runs with both rndc clients (the ``rndc_client`` option): the
control channel spoken directly over kept connections, the default, and the
``rndc`` program run per command; both must behave and explain alike.
"""

from __future__ import annotations

import base64
import pathlib
import secrets
import socket
import time
from collections.abc import Callable

import pytest

from tests import support
from tests.functional.fixtures.bind9 import Bind9Server
from tests.functional.fixtures.ports import free_port
from tests.support import make_zone
from zoneflow import exceptions
from zoneflow.backends.impl_bind9 import Bind9Backend

ZONE = make_zone(name="rndc.example.", serial=1, status="PENDING", action="CREATE")


@pytest.fixture(params=["protocol", "program"], autouse=True)
def rndc_client(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def bind_backend(rndc_client: str) -> Callable[..., Bind9Backend]:
    def make(bind: Bind9Server, **overrides: object) -> Bind9Backend:
        return bind9_backend(bind, rndc_client=rndc_client, **overrides)

    return make


def bind9_backend(bind: Bind9Server, **overrides: object) -> Bind9Backend:
    """The BIND9 backend for ``bind``, its pool options overridden by ``overrides``."""
    target = bind.pool_target([("127.0.0.1", free_port())])
    return Bind9Backend(support.pool_target(target, description="bind-under-test", **overrides))


def _zones(bind: Bind9Server) -> str:
    return bind.rndc("showzone", ZONE.name, check=False).stdout


def test_create_and_delete_are_idempotent(
    bind9: Bind9Server, bind_backend: Callable[..., Bind9Backend]
) -> None:
    backend = bind_backend(bind9)
    backend.create_zone(ZONE)
    backend.create_zone(ZONE)
    assert "type secondary" in _zones(bind9)
    backend.delete_zone(ZONE)
    backend.delete_zone(ZONE)
    assert _zones(bind9) == ""


def test_a_closed_control_port_names_host_and_port(
    bind9: Bind9Server, bind_backend: Callable[..., Bind9Backend]
) -> None:
    port = free_port()
    backend = bind_backend(bind9, rndc_port=port)
    with pytest.raises(exceptions.BackendUnreachable) as caught:
        backend.create_zone(ZONE)
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "bind-under-test" in str(caught.value)


def test_a_wrong_key_is_called_a_wrong_key_without_showing_it(
    bind9: Bind9Server, tmp_path: pathlib.Path, bind_backend: Callable[..., Bind9Backend]
) -> None:
    secret = base64.b64encode(secrets.token_bytes(32)).decode()
    key = tmp_path / "wrong.key"
    key.write_text(f'key "rndc-key" {{ algorithm hmac-sha256; secret "{secret}"; }};\n')
    with pytest.raises(exceptions.BackendError, match="rndc key does not match") as caught:
        bind_backend(bind9, rndc_key_file=str(key)).create_zone(ZONE)
    assert secret not in str(caught.value)
    assert _zones(bind9) == ""


def test_a_key_file_that_is_missing_or_not_a_key_is_named(
    bind9: Bind9Server, tmp_path: pathlib.Path, bind_backend: Callable[..., Bind9Backend]
) -> None:
    with pytest.raises(exceptions.BackendError, match="cannot read rndc_key_file"):
        bind_backend(bind9, rndc_key_file=str(tmp_path / "absent.key")).create_zone(ZONE)
    junk = tmp_path / "junk.key"
    junk.write_text("not a key\n")
    with pytest.raises(exceptions.BackendError, match="holds no 'key"):
        bind_backend(bind9, rndc_key_file=str(junk)).create_zone(ZONE)


def test_a_control_port_that_never_answers_is_given_up_in_time(
    bind9: Bind9Server, bind_backend: Callable[..., Bind9Backend]
) -> None:
    # Listening but never accepting: the kernel completes the handshake, and
    # nothing ever answers.
    with socket.create_server(("127.0.0.1", 0)) as mute:
        backend = bind_backend(bind9, rndc_port=mute.getsockname()[1], rndc_timeout=1)
        began = time.monotonic()
        with pytest.raises(exceptions.BackendUnreachable, match="got no answer from .* in 1s"):
            backend.create_zone(ZONE)
    assert time.monotonic() - began < 10


def test_a_refused_addzone_keeps_named_s_reason(
    bind9: Bind9Server, bind_backend: Callable[..., Bind9Backend]
) -> None:
    with pytest.raises(exceptions.BackendError) as caught:
        bind_backend(bind9).rndc("addzone", "bad.example.", "{ type nonsense; };")
    assert "rndc addzone failed: rndc: 'addzone' failed:" in str(caught.value)
    assert bind9.rndc("showzone", "bad.example.", check=False).returncode != 0
