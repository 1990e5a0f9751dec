"""python-designateclient against a Deployment's `zoneflow api`, for the API's functional tests."""

from __future__ import annotations

from typing import Any

from designateclient.v2 import client as designate
from keystoneauth1 import noauth, session

from tests.functional.deployment import Deployment
from tests.support import eventually


def noauth_client(deployment: Deployment, **headers: str) -> designate.Client:
    """A client as Designate's docs set one up for noauth: the endpoint given."""
    return designate.Client(
        session=session.Session(auth=noauth.NoAuth(), additional_headers=headers),
        endpoint_override=f"{deployment.api_url}/v2",
        timeout=10,
    )


def settled(client: designate.Client, zone_id: str, timeout: float = 30) -> dict[str, Any]:
    """The zone once its job has ended (no longer PENDING), as the client shows it."""

    def ended() -> dict[str, Any] | None:
        zone = client.zones.get(zone_id)
        return dict(zone) if zone["status"] != "PENDING" else None

    return eventually(
        ended, timeout, what=lambda: f"zone to leave PENDING: {client.zones.get(zone_id)}"
    )
