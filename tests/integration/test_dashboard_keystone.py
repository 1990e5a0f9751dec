"""Signing in to the dashboard with Keystone (``[api] auth_strategy = keystone``).

As in test_api_keystone.py, auth_token is real and keystonemiddleware's
AuthTokenFixture stands in for Keystone's token lookups: the project and
roles a page acts with are those auth_token found for the token.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from keystonemiddleware.fixture import AuthTokenFixture

from tests.integration.test_api_keystone import _token, keystone_conf, tokens
from zoneflow.api import app

pytestmark = pytest.mark.usefixtures("fake_pool")
__all__ = ["keystone_conf", "tokens"]


@pytest.fixture
def client(keystone_conf: str) -> Iterator[TestClient]:
    with TestClient(
        app.create_app(), raise_server_exceptions=False, follow_redirects=False
    ) as test_client:
        yield test_client


def _sign_in_with_token(client: TestClient, token: str) -> None:
    client.cookies.clear()
    done = client.post("/dashboard/login", data={"token": token, "next": "/dashboard/zones"})
    assert (done.status_code, done.headers["location"]) == (303, "/dashboard/zones")


def test_the_sign_in_page_asks_for_a_token_or_credentials(client: TestClient) -> None:
    page = client.get("/dashboard/login")
    for field in ("token", "username", "password", "project", "domain"):
        assert f'<label for="{field}">' in page.text


def test_a_token_signs_in_as_its_project_and_roles(
    client: TestClient, tokens: AuthTokenFixture
) -> None:
    alice = _token(tokens, "alice", "member")["X-Auth-Token"]
    bob = _token(tokens, "bob", "member")["X-Auth-Token"]
    _sign_in_with_token(client, alice)
    done = client.post("/dashboard/zones", data={"name": "ks.example.", "email": "h@ks.example"})
    assert done.status_code == 303, done.text
    zone_page = done.headers["location"]
    assert 'id="who-project">alice<' in client.get(zone_page).text

    _sign_in_with_token(client, bob)
    assert client.get(zone_page).status_code == 404
    assert "ks.example." not in client.get("/dashboard/zones").text


def test_a_token_keystone_does_not_know_leads_back_to_signing_in(
    client: TestClient, tokens: AuthTokenFixture
) -> None:
    _sign_in_with_token(client, "forged")
    done = client.get("/dashboard/zones")
    assert done.status_code == 303
    assert done.headers["location"].startswith("/dashboard/login?next=")


def test_credentials_keystone_cannot_be_asked_about_are_refused_saying_why(
    client: TestClient, keystone_conf: str
) -> None:
    # Nothing listens at www_authenticate_uri: the token cannot be issued.
    done = client.post(
        "/dashboard/login",
        data={"username": "alice", "password": "secret", "project": "alice"},
    )
    assert done.status_code == 503
    shown = html.unescape(re.search(r'id="error-message">(.*?)</p>', done.text, re.S).group(1))
    assert "Keystone cannot issue a token" in shown and "www_authenticate_uri" in shown
    assert "secret" not in done.text
    assert 'value="alice"' in done.text  # the form keeps what was typed, but the password


def test_credentials_missing_a_field_say_which(client: TestClient) -> None:
    done = client.post("/dashboard/login", data={"username": "alice"})
    assert done.status_code == 400
    assert "password, project missing" in done.text
