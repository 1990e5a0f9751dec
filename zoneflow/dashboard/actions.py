"""The dashboard's actions: HTML forms posted here, carried out through central.

Each is what the API route of the same name does, with the caller's scope
and rights: a change answers a redirect to the page that shows it (its job
then draws it live); a refusal is the API's error, as the API words it.
Forms are read without a multipart parser: they are URL-encoded.
"""

from __future__ import annotations

import urllib.parse
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from zoneflow import exceptions
from zoneflow.api import auth
from zoneflow.central import health as central_health
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import zones as central_zones
from zoneflow.dashboard import identity, pages, render

router = APIRouter(prefix=render.ROOT, include_in_schema=False)

# A form is small; a bigger body is refused before it is parsed.
MAX_FORM = 64 * 1024


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM:
        raise exceptions.BadRequest(f"a dashboard form is at most {MAX_FORM} bytes")
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        pairs = []
    return dict(pairs)


Form = Annotated[dict[str, str], Depends(_form)]


def _done(where: str) -> Response:
    return RedirectResponse(where, status_code=303)


def _writer(request: Request) -> auth.Context:
    """The caller, refused unless its roles may change zones (as a POST to /v2 is)."""
    return identity.context(request)


def _ttl(form: dict[str, str]) -> int | None:
    text = form.get("ttl", "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise exceptions.InvalidInput(
            f"ttl {text!r} is not a whole number of seconds: give e.g. 3600, or leave it empty"
        )
    return int(text)


def _records(form: dict[str, str]) -> list[str]:
    """One record a line (the form's text area), blank lines left out."""
    return [line.strip() for line in form.get("records", "").splitlines() if line.strip()]


# --- signing in and out ----------------------------------------------------------------


@router.post("/login")
def login(request: Request, form: Form) -> Response:
    back = pages._next(form.get("next"))
    try:
        if identity.noauth(request):
            chosen = identity.choose(form)
        else:
            chosen = identity.signed_in_with(form)
    except exceptions.ZoneflowError as exc:
        values: dict[str, Any] = {
            "request": request,
            "ctx": None,
            "active": "login",
            "noauth": identity.noauth(request),
            "next": back,
            "roles": identity.ROLE_CHOICES,
            "error": exc,
            "chosen": {k: v for k, v in form.items() if k not in ("password", "token")},
        }
        return render.page(request, "login.html", status_code=exc.http_status, **values)
    answer = _done(back)
    identity.forget(answer)
    identity.remember(answer, chosen)
    return answer


@router.post("/logout")
def logout(request: Request) -> Response:
    answer = _done(f"{render.ROOT}/login")
    identity.forget(answer)
    return answer


# --- zones -----------------------------------------------------------------------------


@router.post("/zones")
@render.guarded
def create_zone(request: Request, form: Form) -> Response:
    ctx = _writer(request)
    zone = central_zones.create_zone(
        form.get("name", "").strip(),
        form.get("email", "").strip(),
        ttl=_ttl(form),
        project_id=ctx.project_id,
        description=form.get("description", "").strip() or None,
    )
    return _done(f"{render.ROOT}/zones/{zone.id}")


@router.post("/zones/{zone_id}/delete")
@render.guarded
def delete_zone(request: Request, zone_id: str) -> Response:
    ctx = _writer(request)
    zone = central_zones.delete_zone(zone_id, project_id=ctx.scope)
    return _done(f"{render.ROOT}/zones/{zone.id}")


@router.post("/zones/{zone_id}/recover")
@render.guarded
def recover_zone(request: Request, zone_id: str) -> Response:
    ctx = _writer(request)
    zone = central_zones.recover_zone(zone_id, project_id=ctx.scope)
    return _done(f"{render.ROOT}/zones/{zone.id}")


# --- recordsets ------------------------------------------------------------------------


@router.post("/zones/{zone_id}/recordsets")
@render.guarded
def create_recordset(request: Request, zone_id: str, form: Form) -> Response:
    ctx = _writer(request)
    zone = central_zones.get_zone(zone_id, project_id=ctx.scope)
    central_recordsets.create_recordset(
        zone.id,
        form.get("name", "").strip() or "@",
        form.get("type", "").strip().upper(),
        _records(form),
        ttl=_ttl(form),
        description=form.get("description", "").strip() or None,
        project_id=ctx.scope,
    )
    return _done(f"{render.ROOT}/zones/{zone.id}")


@router.post("/zones/{zone_id}/recordsets/{recordset_id}")
@render.guarded
def update_recordset(request: Request, zone_id: str, recordset_id: str, form: Form) -> Response:
    ctx = _writer(request)
    zone = central_zones.get_zone(zone_id, project_id=ctx.scope)
    ttl = _ttl(form)
    central_recordsets.update_recordset(
        zone,
        recordset_id,
        records=_records(form),
        ttl=ttl,
        clear_ttl=ttl is None,
        project_id=ctx.scope,
    )
    return _done(f"{render.ROOT}/zones/{zone.id}")


@router.post("/zones/{zone_id}/recordsets/{recordset_id}/delete")
@render.guarded
def delete_recordset(request: Request, zone_id: str, recordset_id: str) -> Response:
    ctx = _writer(request)
    zone = central_zones.get_zone(zone_id, project_id=ctx.scope)
    central_recordsets.delete_recordset(zone, recordset_id, project_id=ctx.scope)
    return _done(f"{render.ROOT}/zones/{zone.id}")


# --- a target's maintenance (admin) ----------------------------------------------------


@router.post("/targets/{target_id}/maintenance")
@render.guarded
def maintenance(request: Request, target_id: str, form: Form) -> Response:
    ctx = _writer(request)
    if not ctx.is_admin:
        raise exceptions.Forbidden(
            f"POST {request.url.path} needs the admin role, as PUT "
            "/v2/targets/{target_id}/maintenance does; ask an operator"
        )
    on = form.get("maintenance") == "on"
    target, _ = central_health.set_maintenance(target_id, on=on)
    return _done(f"{render.ROOT}/targets/{target.id}")
