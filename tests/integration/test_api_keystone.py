"""The keystone strategy: keystonemiddleware's auth_token in front of the v2 API.

No Keystone runs here. What is real: auth_token itself, configured from
[keystone_authtoken], refusing requests without a token, and reaching for
Keystone when it must validate one. What stands in for Keystone is
keystonemiddleware's own AuthTokenFixture, which answers auth_token's
token lookups with tokens it makes: the headers auth_token then sets
(X-Identity-Status, X-Project-Id, X-Roles) are its own. A real Keystone
validating real tokens is tests/functional/test_keystone.py.
"""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from keystonemiddleware.fixture import AuthTokenFixture

from tests.functional.fixtures.ports import free_port
from zoneflow import config
from zoneflow.api import app

pytestmark = pytest.mark.usefixtures("fake_pool")


@pytest.fixture
def keystone_conf(database: str, tmp_path: pathlib.Path) -> Iterator[str]:
    """A zoneflow.conf with [api] auth_strategy = keystone and a [keystone_authtoken]
    pointing auth_token at a port nothing listens on; the URL of that "Keystone"."""
    identity = f"http://127.0.0.1:{free_port()}/identity"
    conf = tmp_path / "zoneflow.conf"
    conf.write_text(
        f"""[database]
connection = {database}
[api]
auth_strategy = keystone
[keystone_authtoken]
www_authenticate_uri = {identity}
auth_type = password
auth_url = {identity}
username = zoneflow
password = secret
project_name = service
user_domain_name = Default
project_domain_name = Default
http_connect_timeout = 2
"""
    )
    config.setup([str(conf)])
    yield identity
    config.setup([])


@pytest.fixture
def client(keystone_conf: str) -> Iterator[TestClient]:
    with TestClient(app.create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def tokens() -> Iterator[AuthTokenFixture]:
    fixture = AuthTokenFixture()
    fixture.setUp()
    yield fixture
    fixture.cleanUp()


def _token(tokens: AuthTokenFixture, project: str | None, *roles: str) -> dict[str, str]:
    token = f"token-{project}-{'-'.join(roles)}"
    tokens.add_token_data(
        token_id=token,
        user_id=f"user-of-{project}",
        project_id=project,
        project_name=project,
        role_list=list(roles),
    )
    return {"X-Auth-Token": token}


def _error(done: Any, status: int, error_type: str) -> dict[str, Any]:
    assert done.status_code == status, done.text
    body = done.json()
    assert (body["code"], body["type"]) == (status, error_type), body
    assert body["request_id"] == done.headers["X-OpenStack-Request-ID"]
    assert "Traceback" not in done.text
    return body


def test_a_request_without_a_token_is_401_saying_where_to_get_one(
    client: TestClient, keystone_conf: str
) -> None:
    done = client.get("/v2/zones")
    body = _error(done, 401, "unauthorized")
    assert "X-Auth-Token" in body["message"] and keystone_conf in body["message"]
    # auth_token's header, from [keystone_authtoken] www_authenticate_uri.
    assert done.headers["WWW-Authenticate"] == f'Keystone uri="{keystone_conf}"'
    # noauth's headers are no way in.
    spoofed = {"X-Auth-Project-ID": "alice", "X-Project-Id": "alice", "X-Roles": "admin"}
    _error(client.post("/v2/zones", json={}, headers=spoofed), 401, "unauthorized")
    # Version discovery needs no token (clients read it before they have one).
    assert client.get("/").status_code == 200


def test_a_token_keystone_cannot_be_asked_about_is_503(client: TestClient) -> None:
    # No fixture: auth_token really asks Keystone at auth_url, where nothing listens.
    body = _error(
        client.get("/v2/zones", headers={"X-Auth-Token": "abc"}), 503, "service_unavailable"
    )
    assert "auth_url" in body["message"]


def test_an_unknown_token_is_401(client: TestClient, tokens: AuthTokenFixture) -> None:
    _error(client.get("/v2/zones", headers={"X-Auth-Token": "forged"}), 401, "unauthorized")


def test_the_tokens_project_and_roles_are_the_callers(
    client: TestClient, tokens: AuthTokenFixture
) -> None:
    alice = _token(tokens, "alice", "member", "reader")
    bob = _token(tokens, "bob", "member")
    zone = client.post(
        "/v2/zones", json={"name": "example.com.", "email": "h@example.com"}, headers=alice
    )
    assert zone.status_code == 202, zone.text
    assert zone.json()["project_id"] == "alice"
    zone_url = f"/v2/zones/{zone.json()['id']}"

    assert [z["name"] for z in client.get("/v2/zones", headers=alice).json()["zones"]] == [
        "example.com."
    ]
    assert client.get("/v2/zones", headers=bob).json()["zones"] == []
    _error(client.get(zone_url, headers=bob), 404, "zone_not_found")
    # Identity headers a client sends are dropped by auth_token, not believed.
    spoofing = {**bob, "X-Project-Id": "alice", "X-Roles": "admin"}
    _error(client.get(zone_url, headers=spoofing), 404, "zone_not_found")
    _error(
        client.get("/v2/zones", headers={**spoofing, "X-Auth-All-Projects": "true"}),
        403,
        "forbidden",
    )


def test_reader_reads_member_changes_admin_sees_all_projects(
    client: TestClient, tokens: AuthTokenFixture
) -> None:
    member = _token(tokens, "alice", "member")
    reader = _token(tokens, "alice", "reader")
    admin = _token(tokens, "ops", "admin")
    stranger = _token(tokens, "alice", "heat_stack_owner")
    body = {"name": "example.com.", "email": "h@example.com"}

    forbidden = _error(client.post("/v2/zones", json=body, headers=reader), 403, "forbidden")
    assert "member" in forbidden["message"] and "reader" in forbidden["message"]
    _error(client.get("/v2/zones", headers=stranger), 403, "forbidden")
    zone = client.post("/v2/zones", json=body, headers=member).json()
    assert client.get(f"/v2/zones/{zone['id']}", headers=reader).status_code == 200
    _error(client.delete(f"/v2/zones/{zone['id']}", headers=reader), 403, "forbidden")
    assert client.get(f"/v2/jobs?zone_id={zone['id']}", headers=reader).status_code == 200

    assert client.get("/v2/zones", headers=admin).json()["zones"] == []
    everything = client.get("/v2/zones", headers={**admin, "X-Auth-All-Projects": "true"})
    assert [z["project_id"] for z in everything.json()["zones"]] == ["alice"]
    _error(
        client.get("/v2/zones", headers={**member, "X-Auth-All-Projects": "true"}),
        403,
        "forbidden",
    )


def test_a_token_scoped_to_no_project_is_refused(
    client: TestClient, tokens: AuthTokenFixture
) -> None:
    unscoped = _token(tokens, None, "admin")
    body = _error(client.get("/v2/zones", headers=unscoped), 403, "forbidden")
    assert "project-scoped" in body["message"]


class _WaitingStrategy:
    """A strategy whose token check waits until told: Keystone slow to answer."""

    blocking = True

    def __init__(self) -> None:
        self.asked = threading.Event()
        self.answer = threading.Event()

    def identify(self, request: object) -> tuple[str, str, tuple[str, ...]]:
        self.asked.set()
        self.answer.wait(30)
        return "u", "p", ("member",)


def test_a_token_check_waiting_on_keystone_holds_up_no_other_request() -> None:
    with TestClient(app.create_app(), raise_server_exceptions=False) as client:
        strategy = _WaitingStrategy()
        client.app.state.auth = strategy  # type: ignore[attr-defined]
        waiting: list[int] = []
        first = threading.Thread(target=lambda: waiting.append(client.get("/v2/zones").status_code))
        first.start()
        try:
            assert strategy.asked.wait(10)
            # The API's event loop is free: another request is answered meanwhile.
            assert client.get("/").status_code == 200
            assert not waiting
        finally:
            strategy.answer.set()
            first.join(30)
        assert waiting == [200]
