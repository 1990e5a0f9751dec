"""The keystone strategy against a real Keystone: real tokens, real validation.

Keystone (Debian's python3-keystone) issues Fernet tokens to users of two
projects and holds a catalog whose ``dns`` service points at a real
``zoneflow api``. python-designateclient logs in with a password, finds
the API in the catalog through version discovery, and sends its token;
zoneflow's auth_token (configured from [keystone_authtoken] in
zoneflow.conf, with its own service user) validates each token with
Keystone. Nothing is faked: the projects and roles the API acts on are
the ones Keystone vouched for.

The dashboard's sign-in is tested here too, on the same Keystone (one per
module: it costs seconds of CPU to start): a user's credentials are traded
for a project-scoped token, which every page is then asked with.
"""

from __future__ import annotations

import html
import pathlib
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from designateclient import exceptions as client_errors
from designateclient.v2 import client as designate
from keystoneauth1 import session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client as keystone_client

from tests.functional.conftest import start_server
from tests.functional.deployment import Deployment
from tests.functional.fixtures.keystone import ADMIN_PASSWORD, REGION, KeystoneServer

PASSWORD = "user-secret"
# user -> (project, role)
USERS = {
    "alice": ("alice", "member"),
    "bob": ("bob", "member"),
    "carol": ("alice", "reader"),
    "zoneflow": ("service", "service"),
}


@pytest.fixture(scope="module")
def keystone() -> Iterator[KeystoneServer]:
    server = start_server(KeystoneServer)
    admin = keystone_client.Client(session=_session(server, "admin", "admin", ADMIN_PASSWORD))
    roles = {role.name: role for role in admin.roles.list()}
    roles.setdefault("service", admin.roles.create("service"))
    for user, (project, role) in USERS.items():
        found = admin.projects.list(name=project)
        owner = found[0] if found else admin.projects.create(project, domain="default")
        made = admin.users.create(user, domain="default", password=PASSWORD)
        admin.roles.grant(roles[role], user=made, project=owner)
    yield server
    server.close()


def _session(server: KeystoneServer, user: str, project: str, password: str) -> session.Session:
    return session.Session(
        auth=v3.Password(
            auth_url=server.v3,
            username=user,
            password=password,
            project_name=project,
            user_domain_id="default",
            project_domain_id="default",
        ),
        timeout=30,
    )


@pytest.fixture
def deployment(
    tmp_path: pathlib.Path, keystone: KeystoneServer, postgres_database: str
) -> Iterator[Deployment]:
    """``zoneflow api`` with auth_strategy = keystone, in Keystone's catalog as ``dns``."""
    deployment = Deployment(
        tmp_path,
        database=postgres_database,
        zookeeper_hosts=None,
        extra_conf={
            "api": {"auth_strategy": "keystone"},
            "keystone_authtoken": {
                "www_authenticate_uri": keystone.url,
                "auth_url": keystone.url,
                "auth_type": "password",
                "username": "zoneflow",
                "password": PASSWORD,
                "project_name": "service",
                "user_domain_name": "Default",
                "project_domain_name": "Default",
                "service_token_roles_required": "true",
            },
        },
    )
    deployment.load_pool(
        {
            "name": "default",
            "ns_records": [{"hostname": "ns1.example.org.", "priority": 1}],
            "targets": [{"type": "fake", "description": "fake1"}],
        }
    )
    admin = keystone_client.Client(session=_session(keystone, "admin", "admin", ADMIN_PASSWORD))
    for old in admin.services.list(type="dns"):
        admin.services.delete(old)
    service = admin.services.create("zoneflow", type="dns")
    # The bare URL: the client finds /v2 by version discovery, as with Designate.
    admin.endpoints.create(service, deployment.api_url, interface="public", region=REGION)
    deployment.start_api()
    yield deployment
    deployment.close()


def _client(keystone: KeystoneServer, user: str, **kwargs: Any) -> designate.Client:
    project = USERS[user][0] if user != "admin" else "admin"
    password = PASSWORD if user != "admin" else ADMIN_PASSWORD
    return designate.Client(session=_session(keystone, user, project, password), **kwargs)


def test_designateclient_with_keystone_tokens_sees_its_own_projects_zones(
    keystone: KeystoneServer, deployment: Deployment
) -> None:
    alice = _client(keystone, "alice")
    zone = alice.zones.create("alice.example.", email="hostmaster@alice.example")
    alice_project = alice.session.get_project_id()
    assert zone["project_id"] == alice_project
    bob = _client(keystone, "bob")
    bob.zones.create("bob.example.", email="hostmaster@bob.example")

    assert [z["name"] for z in alice.zones.list()] == ["alice.example."]
    assert [z["name"] for z in bob.zones.list()] == ["bob.example."]
    with pytest.raises(client_errors.NotFound):
        bob.zones.get(zone["id"])
    with pytest.raises(client_errors.Forbidden):
        _client(keystone, "bob", all_projects=True).zones.list()

    # carol reads alice's project (reader) and may change nothing there.
    carol = _client(keystone, "carol")
    assert [z["name"] for z in carol.zones.list()] == ["alice.example."]
    with pytest.raises(client_errors.Forbidden):
        carol.recordsets.create(zone["id"], "www", "A", ["192.0.2.1"])
    alice.recordsets.create(zone["id"], "www", "A", ["192.0.2.1"])
    assert [rs["name"] for rs in carol.recordsets.list(zone["id"], criterion={"type": "A"})] == [
        "www.alice.example."
    ]
    # zoneflow's own endpoints take the same token: the adapter's base is .../v2.
    _, body = carol.session.get("/jobs")
    assert {job["zone_name"] for job in body["jobs"]} <= {"alice.example."}

    # Keystone's admin (admin of project admin) sees every project's zones when asking.
    admin = _client(keystone, "admin", all_projects=True)
    assert sorted(z["name"] for z in admin.zones.list()) == ["alice.example.", "bob.example."]
    assert _client(keystone, "admin").zones.list() == []


def test_requests_without_a_valid_token_are_401_pointing_at_keystone(
    keystone: KeystoneServer, deployment: Deployment
) -> None:
    for headers in ({}, {"X-Auth-Token": "not-a-token"}, {"X-Auth-Project-ID": "alice"}):
        request = urllib.request.Request(f"{deployment.api_url}/v2/zones", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == 401
        assert caught.value.headers["WWW-Authenticate"] == f'Keystone uri="{keystone.url}"'
        body = caught.value.read().decode()
        assert '"type":"unauthorized"' in body and "Traceback" not in body
    # A token of a user who was disabled since is refused too (Keystone says so).
    admin = keystone_client.Client(session=_session(keystone, "admin", "admin", ADMIN_PASSWORD))
    token = _session(keystone, "bob", "bob", PASSWORD).get_token()
    (bob,) = admin.users.list(name="bob")
    admin.users.update(bob, enabled=False)
    try:
        request = urllib.request.Request(
            f"{deployment.api_url}/v2/zones", headers={"X-Auth-Token": token}
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == 401
    finally:
        admin.users.update(bob, enabled=True)


# --- the dashboard's sign-in ---------------------------------------------------------------------


def _dashboard(running: Deployment) -> httpx.Client:
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
    with _dashboard(deployment) as alice:
        done = _sign_in(alice, "alice", PASSWORD, "alice")
        assert (done.status_code, done.headers["location"]) == (303, "/dashboard/zones"), done.text
        made = alice.post(
            "/dashboard/zones", data={"name": "keystone.example.", "email": "h@keystone.example"}
        )
        assert made.status_code == 303, made.text
        zone_page = made.headers["location"]
        page = alice.get(zone_page)
        assert page.status_code == 200 and "keystone.example." in page.text

    with _dashboard(deployment) as bob:
        assert _sign_in(bob, "bob", PASSWORD, "bob").status_code == 303
        assert bob.get(zone_page).status_code == 404
        assert "keystone.example." not in bob.get("/dashboard/zones").text


def test_wrong_credentials_are_refused_saying_so(deployment: Deployment) -> None:
    with _dashboard(deployment) as client:
        done = _sign_in(client, "alice", "not-the-password", "alice")
        assert done.status_code == 401
        shown = re.search(r'id="error-message">(.*?)</p>', done.text, re.S)
        assert shown and "Keystone refused these credentials" in html.unescape(shown.group(1))
        assert "not-the-password" not in done.text
        assert client.get("/dashboard/zones").status_code == 303
