"""Pages drawn on the server from the package's Jinja2 templates.

A page's live parts are Jinja2 blocks: ``?part=NAME`` renders that block
alone, which is what the page's script fetches when an event says the part
changed, so a part is drawn by the same template code on load and live.
"""

from __future__ import annotations

import datetime
import functools
import urllib.parse
from collections.abc import Callable
from typing import Any, ParamSpec

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from zoneflow import exceptions
from zoneflow.dashboard import identity

P = ParamSpec("P")

ROOT = "/dashboard"

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("zoneflow.dashboard", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: datetime.datetime | None) -> str:
    if value is None:
        return "—"
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _iso(value: datetime.datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.isoformat()


ENV.filters["when"] = _when
ENV.filters["iso"] = _iso
ENV.globals["root"] = ROOT


def page(request: Request, name: str, /, *, status_code: int = 200, **values: Any) -> Response:
    """The page, or the one block of it ``?part=`` names."""
    template = ENV.get_template(name)
    values.setdefault("request", request)
    part = request.query_params.get("part")
    if part is None:
        return HTMLResponse(template.render(values), status_code=status_code)
    if part not in template.blocks or not part.startswith("live_"):
        raise exceptions.BadRequest(
            f"part {part!r} is not a live part of this page: give one of "
            f"{', '.join(sorted(b for b in template.blocks if b.startswith('live_')))}"
        )
    context = template.new_context(values)
    return HTMLResponse("".join(template.blocks[part](context)), status_code=status_code)


def error(request: Request, exc: exceptions.ZoneflowError) -> Response:
    """The API's error, worded as the API words it, with its status (a part asked for
    live gets the bare message, which the script shows in place)."""
    values = {
        "request": request,
        "code": exc.http_status,
        "error_type": exc.error_type,
        "message": exc.message,
        "request_id": getattr(request.state, "request_id", ""),
    }
    template = "error_part.html" if "part" in request.query_params else "error.html"
    return HTMLResponse(ENV.get_template(template).render(values), status_code=exc.http_status)


def sign_in(request: Request) -> Response:
    """To the sign-in page, coming back here after."""
    back = request.url.path
    if request.url.query:
        back += "?" + request.url.query
    return RedirectResponse(f"{ROOT}/login?next={urllib.parse.quote(back, safe='')}", 303)


def guarded(route: Callable[P, Response]) -> Callable[P, Response]:
    """A dashboard route whose refusals are pages: the API's errors shown as it words
    them, no identity yet a trip to the sign-in page."""

    @functools.wraps(route)
    def answered(*args: P.args, **kwargs: P.kwargs) -> Response:
        request = kwargs["request"]
        assert isinstance(request, Request)
        try:
            return route(*args, **kwargs)
        except (identity.NotSignedIn, exceptions.NotAuthenticated):
            # No identity, or a token Keystone no longer takes: sign in (again).
            return sign_in(request)
        except exceptions.ZoneflowError as exc:
            return error(request, exc)

    return answered
