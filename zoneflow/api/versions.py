"""Version discovery: ``GET /`` lists the API versions, ``GET /v2`` describes v2.

keystoneauth (under python-designateclient and the openstack CLI) reads
these to find the v2 endpoint from a bare service URL. The shape is
Designate's (designate/api/versions.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from zoneflow.api import schemas, views

router = APIRouter(tags=["versions"])

# When zoneflow's v2 last changed in a way a client could notice.
UPDATED = "2026-12-01T00:00:00Z"


def _version(request: Request, version_id: str, status: str) -> dict[str, Any]:
    return {
        "id": version_id,
        "status": status,
        "updated": UPDATED,
        "links": [{"href": f"{views.base_url(request)}/v2", "rel": "self"}],
    }


@router.get("/", response_model=schemas.Versions, summary="List API versions")
def list_versions(request: Request) -> Any:
    # A browser asks for HTML: it is sent to the dashboard. API clients (keystoneauth
    # sends Accept: application/json) get the versions document.
    if _wants_html(request.headers.get("accept", "")):
        return RedirectResponse("/dashboard/", status_code=303)
    return {
        "versions": [
            _version(request, "v2", "CURRENT"),
            _version(request, "v2.0", "SUPPORTED"),
        ]
    }


def _wants_html(accept: str) -> bool:
    """Whether text/html is the first type the client lists (a browser's Accept)."""
    first = accept.split(",", 1)[0].split(";", 1)[0].strip().lower()
    return first == "text/html"


@router.get("/v2", response_model=schemas.OneVersion, summary="Describe API v2")
def show_v2(request: Request) -> dict[str, Any]:
    return {"version": _version(request, "v2", "CURRENT")}
