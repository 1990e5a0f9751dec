"""python-designateclient against a Deployment's `zoneflow api`, for the API's functional tests."""

from __future__ import annotations

import time
from typing import Any

from designateclient.v2 import client as designate
from keystoneauth1 import noauth, session

from tests.functional.deployment import Deployment


def noauth_client(deployment: Deployment, **headers: str) -> designate.Client:
    """A client as Designate's docs set one up for noauth: the endpoint given."""
    return designate.Client(
        session=session.Session(auth=noauth.NoAuth(), additional_headers=headers),
        endpoint_override=f"{deployment.api_url}/v2",
        timeout=10,
    )


def settled(client: designate.Client, zone_id: str, timeout: float = 30) -> dict[str, Any]:
    """The zone once its job has ended (no longer PENDING), as the client shows it."""
    deadline = time.monotonic() + timeout
    while True:
        zone = client.zones.get(zone_id)
        if zone["status"] != "PENDING":
            return dict(zone)
        assert time.monotonic() < deadline, f"zone still PENDING after {timeout}s: {zone}"
        time.sleep(0.05)
