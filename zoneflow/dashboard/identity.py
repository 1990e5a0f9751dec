"""Who is using the dashboard: the API's identity, carried by a cookie.

A browser sends no ``X-Auth-*`` headers, so the dashboard keeps what would be
in them in cookies and hands them to the API's authentication strategy as
those headers: the API's rules (roles, all projects, Keystone's checks)
decide, never the dashboard's own. In noauth mode the caller picks a project
and a role on the page; with Keystone the caller signs in with a token, or
with credentials the dashboard trades for one (:func:`signed_in_with`). Any
identity header the browser did send is dropped: the cookie alone speaks.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from oslo_config import cfg

from zoneflow import exceptions
from zoneflow.api import auth

PROJECT = "zoneflow_project"
ROLES = "zoneflow_roles"
TOKEN = "zoneflow_token"
ALL_PROJECTS = "zoneflow_all_projects"
COOKIES = (PROJECT, ROLES, TOKEN, ALL_PROJECTS)
# What the browser may not say about itself (the cookie does).
_IDENTITY_HEADERS = frozenset(
    {
        "x-auth-token",
        "x-auth-project-id",
        "x-project-id",
        "x-roles",
        "x-auth-user-id",
        "x-auth-all-projects",
        "x-auth-sudo-project-id",
        "x-auth-sudo-tenant-id",
    }
)
ROLE_CHOICES = (auth.READER, auth.MEMBER, auth.ADMIN)


class NotSignedIn(Exception):
    """The browser has no identity yet: the sign-in page follows."""


def noauth(request: Request) -> bool:
    return isinstance(request.app.state.auth, auth.NoAuth)


def context(request: Request) -> auth.Context:
    """The caller's context, as the API would make it from the cookie's headers."""
    headers = [
        (name, value)
        for name, value in request.scope["headers"]
        if name.decode("latin-1").lower() not in _IDENTITY_HEADERS
    ]
    cookies = request.cookies
    if noauth(request):
        if not cookies.get(PROJECT):
            raise NotSignedIn
        headers.append((b"x-auth-project-id", cookies[PROJECT].encode("latin-1")))
        headers.append((b"x-roles", cookies.get(ROLES, auth.READER).encode("latin-1")))
    else:
        if not cookies.get(TOKEN):
            raise NotSignedIn
        headers.append((b"x-auth-token", cookies[TOKEN].encode("latin-1")))
    if cookies.get(ALL_PROJECTS) == "true":
        headers.append((b"x-auth-all-projects", b"true"))
    as_sent = Request(dict(request.scope, headers=headers))
    return auth.context(as_sent, request.app.state.auth)


@dataclasses.dataclass(frozen=True)
class Chosen:
    """What the sign-in form set: a project and role (noauth) or a token (keystone)."""

    project: str | None = None
    role: str | None = None
    token: str | None = None
    all_projects: bool = False


def choose(form: dict[str, str]) -> Chosen:
    """The noauth form: a project and a role, checked as the API checks its headers."""
    project = form.get("project", "").strip()
    role = form.get("role", auth.READER).strip().lower()
    if not project:
        raise exceptions.BadRequest("give a project id to act in (e.g. the one your zones are in)")
    if not (project.isascii() and project.isprintable()) or len(project) > auth.MAX_HEADER_ID:
        raise exceptions.BadRequest(
            f"a project id is printable ASCII text of at most {auth.MAX_HEADER_ID} characters"
        )
    if role not in ROLE_CHOICES:
        raise exceptions.BadRequest(
            f"role {role!r} is unknown: give one of {', '.join(ROLE_CHOICES)}"
        )
    return Chosen(project=project, role=role, all_projects=form.get("all_projects") == "true")


def remember(response: Response, chosen: Chosen) -> None:
    """Set the cookies: HttpOnly (no script reads a token) and SameSite=Strict (another
    site's form cannot act with them, which is what guards the actions)."""
    kept: dict[str, Any] = {"httponly": True, "samesite": "strict", "path": "/"}
    if chosen.token is not None:
        response.set_cookie(TOKEN, chosen.token, **kept)
    if chosen.project is not None:
        response.set_cookie(PROJECT, chosen.project, **kept)
        response.set_cookie(ROLES, chosen.role or auth.READER, **kept)
    if chosen.all_projects:
        response.set_cookie(ALL_PROJECTS, "true", **kept)
    else:
        response.delete_cookie(ALL_PROJECTS, path="/")


def forget(response: Response) -> None:
    for name in COOKIES:
        response.delete_cookie(name, path="/")


def signed_in_with(form: dict[str, str]) -> Chosen:
    """The Keystone form: a token as given, or one Keystone issues for credentials."""
    token = form.get("token", "").strip()
    if token:
        return Chosen(token=token, all_projects=form.get("all_projects") == "true")
    missing = [f for f in ("username", "password", "project") if not form.get(f, "").strip()]
    if missing:
        raise exceptions.BadRequest(
            f"give a token, or a user name, password and project ({', '.join(missing)} missing)"
        )
    # Imported here: keystoneauth1 (with requests) costs every API process 0.1 s of
    # CPU to import, and only a Keystone sign-in uses it.
    from keystoneauth1 import exceptions as ksa_exceptions
    from keystoneauth1 import session as ksa_session
    from keystoneauth1.identity import v3

    domain = form.get("domain", "").strip() or "Default"
    plugin = v3.Password(
        auth_url=keystone_url(),
        username=form["username"].strip(),
        password=form["password"],
        project_name=form["project"].strip(),
        user_domain_name=domain,
        project_domain_name=domain,
    )
    try:
        issued = ksa_session.Session(auth=plugin).get_token()
    except ksa_exceptions.Unauthorized:
        raise exceptions.NotAuthenticated(
            "Keystone refused these credentials: check the user name, password, project and domain"
        ) from None
    except ksa_exceptions.ClientException as exc:
        raise exceptions.ServiceUnavailable(
            f"Keystone cannot issue a token ({type(exc).__name__}): check [keystone_authtoken] "
            "www_authenticate_uri and that Keystone is up"
        ) from None
    return Chosen(token=str(issued), all_projects=form.get("all_projects") == "true")


def keystone_url() -> str:
    """Where users get tokens: [keystone_authtoken] www_authenticate_uri, the address
    auth_token itself sends clients to (read apart, as auth_token reads its section)."""
    conf = cfg.ConfigOpts()
    conf.register_opt(cfg.StrOpt("www_authenticate_uri"), group="keystone_authtoken")
    conf([], project="zoneflow", default_config_files=list(cfg.CONF.config_file or []))
    url = conf.keystone_authtoken.www_authenticate_uri
    if not url:
        raise exceptions.InvalidConfig(
            "signing in with credentials needs [keystone_authtoken] www_authenticate_uri "
            "(Keystone's public address); sign in with a token meanwhile"
        )
    return str(url).rstrip("/") + "/v3"
