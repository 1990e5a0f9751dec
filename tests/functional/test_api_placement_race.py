"""A project's zone never ends up inside or above another project's zone, even when
both are created at the same instant: a real ``zoneflow api`` on a real PostgreSQL.

Each round sends ``N`` requests from two projects at one barrier, each on its
own connection: for every family, one project creates the parent
(``f0.race.example.``) while both projects create children below it
(``c1.f0.race.example.``). Whatever order they land in, afterwards no zone of
one project may lie inside another project's zone of the pool, every refused
request must have been refused with Designate's 403 ``illegal_child`` /
``illegal_parent`` (for an import: an ERROR task saying so), and the database
must hold exactly the accepted zones.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.functional.deployment import Deployment, api_alone
from tests.functional.fixtures.ports import HOST
from tests.functional.fixtures.postgres import PostgresServer
from tests.support import at_once

FAMILIES = 4
CHILDREN = 3
REFUSALS = {"illegal_child": "is inside zone", "illegal_parent": "would hold zone"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer) -> Iterator[Deployment]:
    """One ``zoneflow api`` on its own PostgreSQL database (no conductor: see api_alone)."""
    with api_alone(tmp_path_factory.mktemp("race"), postgres, "placement_race") as deployment:
        yield deployment


def _requests(suffix: str) -> list[tuple[str, str]]:
    """(project, zone name) of one round: per family a parent and children, the
    children alternating between the projects so each family has both (each round has
    projects of its own, which its zones keep within the default quota)."""
    projects = (f"alice-{suffix}", f"bob-{suffix}")
    wanted = []
    for family in range(FAMILIES):
        parent = f"f{family}.{suffix}.race.example."
        wanted.append((projects[family % 2], parent))
        wanted += [
            (projects[(family + child) % 2], f"c{child}.{parent}") for child in range(CHILDREN)
        ]
    return wanted


def _send(
    deployment: Deployment, start: threading.Barrier, project: str, name: str, via: str
) -> str | None:
    """Create ``name`` for ``project`` by ``via`` on a connection of its own once every
    client is at ``start``; the zone's id, or None if it was refused as it must be."""
    headers = {"X-Auth-Project-ID": project, "X-Roles": "member"}
    if via == "zones":
        path, body = "/v2/zones", json.dumps({"name": name, "email": "hostmaster@race.example"})
        headers["Content-Type"] = "application/json"
    else:
        path = "/v2/zones/tasks/imports"
        body = f"$ORIGIN {name}\n@ 300 IN SOA ns1.race.example. h.{name} 1 1 1 1 1\n"
        headers["Content-Type"] = "text/dns"
    conn = http.client.HTTPConnection(HOST, deployment.api_port, timeout=30)
    conn.connect()
    try:
        start.wait(timeout=30)
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        status, answer = response.status, json.loads(response.read())
    finally:
        conn.close()
    if via == "zones":
        if status == 202:
            return str(answer["id"])
        assert (status, answer["code"]) == (403, 403), (name, status, answer)
        assert answer["type"] in REFUSALS, answer
        assert REFUSALS[answer["type"]] in answer["message"], answer
        return None
    assert status == 202, (name, status, answer)
    if answer["status"] == "COMPLETE":
        return str(answer["zone_id"])
    assert (answer["status"], answer["zone_id"]) == ("ERROR", None), answer
    assert any(words in answer["message"] for words in REFUSALS.values()), answer["message"]
    return None


def _race(deployment: Deployment, wanted: list[tuple[str, str]], via: str) -> list[str | None]:
    """Send every request at the same instant; each one's zone id (None: refused)."""
    return at_once(len(wanted), lambda i, start: _send(deployment, start, *wanted[i], via))


def _held(deployment: Deployment, suffix: str) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """The zones of a round the database holds (id -> (name, project)) and the zones
    its waiting create-zone jobs are for."""
    engine = sa.create_engine(deployment.database)
    round_ = {"n": f"%.{suffix}.race.example."}
    try:
        with engine.connect() as conn:
            zones = conn.execute(
                sa.text("SELECT id, name, project_id FROM zones WHERE name LIKE :n"), round_
            )
            jobs = conn.execute(
                sa.text(
                    "SELECT zone_id FROM job_outbox WHERE kind = 'create-zone' AND zone_id IN "
                    "(SELECT id FROM zones WHERE name LIKE :n)"
                ),
                round_,
            )
            return (
                {str(i): (str(name), str(project)) for i, name, project in zones},
                sorted(str(zone_id) for (zone_id,) in jobs),
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize("via", ["zones", "imports"])
def test_two_projects_racing_for_a_zone_and_its_subzones_never_nest(
    api: Deployment, via: str
) -> None:
    wanted = _requests(via)
    ids = _race(api, wanted, via)

    held, jobs = _held(api, via)
    accepted = sorted(i for i in ids if i is not None)
    assert sorted(held) == jobs == accepted
    for name, project in held.values():
        for other, owner in held.values():
            assert owner == project or not name.endswith("." + other), (
                f"{project}'s {name} is inside {owner}'s {other}"
            )
    # In each family the parent's owner and the other project's children cannot both
    # have been accepted: every family saw at least one refusal.
    refused = {name for (_, name), zone_id in zip(wanted, ids, strict=True) if zone_id is None}
    for family in range(FAMILIES):
        assert any(name.endswith(f"f{family}.{via}.race.example.") for name in refused), refused
