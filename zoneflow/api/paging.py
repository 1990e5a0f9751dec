"""A list request's query string: Designate's paging parameters and filters.

``limit`` (a number or ``max``), ``marker`` (the id of the last item of the
previous page), ``sort_key`` and ``sort_dir`` choose the page; every other
parameter is a filter, checked by central against what the list accepts.
``all_projects`` / ``all_tenants`` belong to authentication (see
:mod:`zoneflow.api.auth`) and are neither.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from zoneflow import exceptions, objects
from zoneflow.api import options

CONF = options.CONF


PAGING = ("limit", "marker", "sort_key", "sort_dir")
# records_data asks for a form of the items (see views.recordset), not for some of them.
NOT_FILTERS = (*PAGING, "all_projects", "all_tenants", "records_data")


def parse(request: Request) -> tuple[dict[str, str], objects.Paging]:
    """The filters and the paging a list request asks for."""
    params: dict[str, str] = {}
    repeated = []
    for key, value in request.query_params.multi_items():
        if key in params:
            repeated.append(key)
        params[key] = value
    if repeated:
        raise exceptions.BadRequest(
            f"parameter(s) {', '.join(sorted(set(repeated)))} given more than once: give each once"
        )
    paging = objects.Paging(
        limit=_limit(params.get("limit")),
        marker=params.get("marker") or None,
        sort_key=params.get("sort_key") or "created_at",
        sort_dir=params.get("sort_dir") or objects.ASC,
    )
    filters = {key: value for key, value in params.items() if key not in NOT_FILTERS}
    return filters, paging


def _limit(text: str | None) -> int:
    if text is None or text == "":
        return int(CONF.api.default_limit)
    if text.lower() == "max":
        return int(CONF.api.max_limit)
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if limit < 1:
        raise exceptions.InvalidLimit(
            f"limit {text!r} is invalid: give a whole number from 1 to {CONF.api.max_limit}, or max"
        )
    return min(limit, int(CONF.api.max_limit))


def openapi_parameters(filters: tuple[str, ...]) -> list[dict[str, Any]]:
    """The query parameters of a list, for ``/openapi.json``."""
    described: dict[str, tuple[dict[str, Any], str]] = {
        # What _limit takes: from 1 up (more than [api] max_limit is cut to it,
        # as Designate does, not refused), or max.
        "limit": (
            {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "enum": ["max"]}]},
            "items per page: a number from 1 (more than [api] max_limit, default 1000, "
            "is cut to it), or max",
        ),
        "marker": ({"type": "string"}, "id of the last item of the previous page"),
        "sort_key": ({"type": "string"}, "field to sort by (default created_at)"),
        "sort_dir": ({"type": "string"}, "asc (default) or desc"),
        "all_projects": ({"type": "string"}, "true: every project's items (admin role only)"),
    }
    parameters = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "schema": schema,
            "description": text,
        }
        for name, (schema, text) in described.items()
    ]
    parameters += [
        {
            "name": name,
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "filter; * is a wildcard",
        }
        for name in filters
    ]
    return parameters
