"""Signing in to the dashboard against a real Keystone: a user's credentials are traded
for a project-scoped token, which every page is then asked with.

The Keystone and the ``zoneflow api`` (auth_strategy = keystone) are
tests/functional/test_api_keystone.py's.
"""

from __future__ import annotations

import html
import re

import httpx

from tests.functional.deployment import Deployment
from tests.functional.test_api_keystone import PASSWORD, deployment, keystone

__all__ = ["deployment", "keystone"]


def _client(running: Deployment) -> httpx.Client:
    return httpx.Client(base_url=running.api_url, timeout=60, follow_redirects=False)


def _sign_in(client: httpx.Client, user: str, password: str, project: str) -> httpx.Response:
    return client.post(
        "/dashboard/login",
        data={
            "username": user,
            "password": password,
            "project": project,
            "next": "/dashboard/zones",
        },
    )


def test_credentials_sign_in_as_the_users_project_and_another_project_sees_nothing(
    deployment: Deployment,
) -> None:
    with _client(deployment) as alice:
        done = _sign_in(alice, "alice", PASSWORD, "alice")
        assert (done.status_code, done.headers["location"]) == (303, "/dashboard/zones"), done.text
        made = alice.post(
            "/dashboard/zones", data={"name": "keystone.example.", "email": "h@keystone.example"}
        )
        assert made.status_code == 303, made.text
        zone_page = made.headers["location"]
        page = alice.get(zone_page)
        assert page.status_code == 200 and "keystone.example." in page.text

    with _client(deployment) as bob:
        assert _sign_in(bob, "bob", PASSWORD, "bob").status_code == 303
        assert bob.get(zone_page).status_code == 404
        assert "keystone.example." not in bob.get("/dashboard/zones").text


def test_wrong_credentials_are_refused_saying_so(deployment: Deployment) -> None:
    with _client(deployment) as client:
        done = _sign_in(client, "alice", "not-the-password", "alice")
        assert done.status_code == 401
        shown = re.search(r'id="error-message">(.*?)</p>', done.text, re.S)
        assert shown and "Keystone refused these credentials" in html.unescape(shown.group(1))
        assert "not-the-password" not in done.text
        assert client.get("/dashboard/zones").status_code == 303
