"""Quotas hold under concurrent creates: a real ``zoneflow api`` on a real PostgreSQL.

``N`` clients, each on its own connection, send their create at the same
instant (a barrier) into a project whose quota allows ``Q < N`` more.
Exactly ``Q`` must be accepted (202), every other one refused with
Designate's 413 ``over_quota`` naming the quota, and the database must
hold exactly ``Q``: the quota's check and the insert are one atomic step.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.functional.deployment import Deployment, api_alone
from tests.functional.fixtures.ports import HOST
from tests.functional.fixtures.postgres import PostgresServer
from tests.support import at_once

N = 16
Q = 4
ADMIN = {"X-Auth-Project-ID": "ops", "X-Roles": "admin,member"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer) -> Iterator[Deployment]:
    """One ``zoneflow api`` on its own PostgreSQL database for the module's races."""
    with api_alone(tmp_path_factory.mktemp("race"), postgres, "quota_race") as deployment:
        yield deployment


def _request(
    deployment: Deployment, method: str, path: str, body: Any, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection(HOST, deployment.api_port, timeout=30)
    try:
        conn.request(
            method, path, json.dumps(body), {**headers, "Content-Type": "application/json"}
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def _race(
    deployment: Deployment, path: str, bodies: list[dict[str, Any]], headers: dict[str, str]
) -> list[tuple[int, dict[str, Any]]]:
    """Send each body to ``path`` on its own connection, all at the same instant."""

    def send(i: int, start: threading.Barrier) -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPConnection(HOST, deployment.api_port, timeout=30)
        conn.connect()
        try:
            start.wait(timeout=30)
            conn.request(
                "POST", path, json.dumps(bodies[i]), {**headers, "Content-Type": "application/json"}
            )
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    return at_once(len(bodies), send)


def _count(deployment: Deployment, query: sa.Select[Any]) -> int:
    engine = sa.create_engine(deployment.database)
    try:
        with engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def _assert_exactly_q_accepted(answers: list[tuple[int, dict[str, Any]]], quota: str) -> None:
    statuses = sorted(status for status, _ in answers)
    assert statuses == [202] * Q + [413] * (N - Q), statuses
    for status, body in answers:
        if status == 413:
            assert (body["code"], body["type"]) == (413, "over_quota"), body
            assert f"quota exceeded for {quota}" in body["message"], body["message"]


def _set_quotas(deployment: Deployment, project: str, **limits: int) -> None:
    status, body = _request(deployment, "PATCH", f"/v2/quotas/{project}", limits, ADMIN)
    assert status == 200, body


def _zone(deployment: Deployment, name: str, headers: dict[str, str]) -> str:
    status, body = _request(
        deployment, "POST", "/v2/zones", {"name": name, "email": "hostmaster@race.example"}, headers
    )
    assert status == 202, body
    return str(body["id"])


def test_concurrent_zone_creates_never_pass_the_zones_quota(api: Deployment) -> None:
    project = {"X-Auth-Project-ID": "zones-race", "X-Roles": "member"}
    _set_quotas(api, "zones-race", zones=Q)
    answers = _race(
        api,
        "/v2/zones",
        [{"name": f"z{i}.race.example.", "email": "hostmaster@race.example"} for i in range(N)],
        project,
    )
    _assert_exactly_q_accepted(answers, "zones")
    assert _count(api, sa.text("SELECT count(*) FROM zones WHERE project_id = 'zones-race'")) == Q
    # Each accepted zone, and only those, has its create job waiting.
    accepted = sorted(body["id"] for status, body in answers if status == 202)
    jobs = sa.text(
        "SELECT count(*) FROM job_outbox WHERE kind = 'create-zone' AND zone_id IN "
        "(SELECT id FROM zones WHERE project_id = 'zones-race')"
    )
    assert _count(api, jobs) == len(accepted) == Q


@pytest.mark.parametrize(
    ("quota", "limits", "records"),
    [
        ("zone_recordsets", {"zone_recordsets": Q}, 1),
        ("zone_records", {"zone_records": 2 * Q}, 2),
    ],
)
def test_concurrent_recordset_creates_never_pass_the_zones_quotas(
    api: Deployment, quota: str, limits: dict[str, int], records: int
) -> None:
    project = f"{quota}-race"
    headers = {"X-Auth-Project-ID": project, "X-Roles": "member"}
    _set_quotas(api, project, **limits)
    zone_name = f"{quota.replace('_', '-')}.race.example."
    zone_id = _zone(api, zone_name, headers)
    answers = _race(
        api,
        f"/v2/zones/{zone_id}/recordsets",
        [
            {
                "name": f"h{i}.{zone_name}",
                "type": "A",
                "records": [f"192.0.2.{i}", f"198.51.100.{i}"][:records],
            }
            for i in range(N)
        ],
        headers,
    )
    _assert_exactly_q_accepted(answers, quota)
    in_zone = f"FROM recordsets WHERE zone_id = '{zone_id}'"
    assert _count(api, sa.text(f"SELECT count(*) {in_zone}")) == Q
    held = f"SELECT count(*) FROM records WHERE recordset_id IN (SELECT id {in_zone})"
    assert _count(api, sa.text(held)) == Q * records


def test_two_projects_racing_at_once_each_get_their_own_quota(api: Deployment) -> None:
    projects = [f"apart-{i}" for i in range(2)]
    for project in projects:
        _set_quotas(api, project, zones=Q)
    bodies, owners = [], []
    for i in range(N):
        owners.append(projects[i % 2])
        bodies.append({"name": f"apart{i}.race.example.", "email": "hostmaster@race.example"})
    # One race per project, at once: every project's Q are accepted.
    results: dict[str, list[tuple[int, dict[str, Any]]]] = {}

    def race(project: str) -> None:
        mine = [body for body, owner in zip(bodies, owners, strict=True) if owner == project]
        headers = {"X-Auth-Project-ID": project, "X-Roles": "member"}
        results[project] = _race(api, "/v2/zones", mine, headers)

    threads = [threading.Thread(target=race, args=(p,)) for p in projects]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    for project in projects:
        statuses = sorted(status for status, _ in results[project])
        assert statuses == [202] * Q + [413] * (N // 2 - Q), (project, statuses)
        held = f"SELECT count(*) FROM zones WHERE project_id = '{project}'"
        assert _count(api, sa.text(held)) == Q
