"""Who is asking: the request context every v2 call runs with.

An authentication strategy (``[api] auth_strategy``, an entry point in
``zoneflow.api.auth``: ``noauth`` here, ``keystone`` in
:mod:`zoneflow.api.auth_keystone`) turns a request's headers into a
:class:`Context`: the caller's project and roles. What follows is common
to every strategy, as in Designate's default policy: ``reader`` may read,
``member`` may also change its project's zones, and ``admin`` may besides
see every project's zones (``X-Auth-All-Projects: true`` or
``?all_projects=true``) and act as another project
(``X-Auth-Sudo-Project-ID``). A caller without the role is refused (403).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, cast

from fastapi import Request
from stevedore import driver

from zoneflow import exceptions
from zoneflow.api import options

CONF = options.CONF


ADMIN = "admin"
MEMBER = "member"
READER = "reader"
# Keystone's default roles, as Designate's default policy uses them.
READ_ROLES = frozenset({ADMIN, MEMBER, READER})
WRITE_ROLES = frozenset({ADMIN, MEMBER})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_TRUE = ("1", "t", "true", "on", "y", "yes")


@dataclasses.dataclass(frozen=True)
class Context:
    request_id: str
    user_id: str | None
    project_id: str | None
    roles: tuple[str, ...]
    all_projects: bool = False
    # The caller's own project when it acts as another (sudo).
    original_project_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles

    @property
    def scope(self) -> str | None:
        """The project whose zones this caller sees (None: every project's)."""
        return None if self.all_projects else self.project_id


class Strategy(Protocol):
    # True when identify may wait on the network (a token checked with Keystone): the
    # API then runs it in a worker thread, not in its event loop.
    blocking: bool

    def identify(self, request: Request) -> tuple[str | None, str | None, tuple[str, ...]]:
        """(user id, project id, roles) of the caller, or raise Forbidden."""
        ...


class NoAuth:
    """Designate's noauth: trust the headers; a caller who sends none is ``admin``
    of ``noauth-project`` (which keystoneauth's noauth plugin and a bare
    python-designateclient are)."""

    blocking = False

    def identify(self, request: Request) -> tuple[str | None, str | None, tuple[str, ...]]:
        # Both read, so that either one malformed is refused whichever is used.
        project, project_too = header(request, "X-Auth-Project-ID"), header(request, "X-Project-Id")
        project = project or project_too
        roles = header(request, "X-Roles")
        user = header(request, "X-Auth-User-ID")
        return (
            "noauth-user" if user is None else user,
            project or "noauth-project",
            # An X-Roles header sent empty is no role, not admin.
            tuple(
                role.strip().lower()
                for role in (ADMIN if roles is None else roles).split(",")
                if role.strip()
            ),
        )


# The longest project id the database keeps (models' project_id columns).
MAX_HEADER_ID = 255


def header(request: Request, name: str) -> str | None:
    """An identity header's value (a project, user or role list), refused (400) unless it
    is printable ASCII that fits the database: it becomes a project id that is stored,
    compared and shown back."""
    value = request.headers.get(name)
    if value is None:
        return None
    if not (value.isascii() and value.isprintable()) or len(value) > MAX_HEADER_ID:
        raise exceptions.BadRequest(
            f"header {name} must be printable ASCII text of at most {MAX_HEADER_ID} "
            "characters (a project id such as 4a9d0c2e...): control characters and "
            "non-ASCII bytes are refused"
        )
    return value


def load_strategy() -> Strategy:
    """The ``[api] auth_strategy`` named in the configuration."""
    name = CONF.api.auth_strategy
    try:
        manager: Any = driver.DriverManager("zoneflow.api.auth", name, invoke_on_load=True)
    except Exception as exc:
        raise exceptions.InvalidConfig(
            f"[api] auth_strategy {name!r} cannot be loaded ({exc}): use keystone or noauth"
        ) from exc
    return cast(Strategy, manager.driver)


def context(request: Request, strategy: Strategy) -> Context:
    """The context of one request: the caller, then all-projects and sudo if asked."""
    user_id, project_id, roles = strategy.identify(request)
    ctx = Context(
        request_id=request.state.request_id,
        user_id=user_id,
        project_id=project_id,
        roles=roles,
    )
    _check_roles(request, roles)
    if _all_projects(request):
        if not ctx.is_admin:
            raise exceptions.Forbidden(
                "seeing all projects needs the admin role: ask without X-Auth-All-Projects "
                "to see your project's zones"
            )
        ctx = dataclasses.replace(ctx, all_projects=True)
    sudo = header(request, "X-Auth-Sudo-Project-ID")
    sudo_tenant = header(request, "X-Auth-Sudo-Tenant-ID")
    sudo = sudo or sudo_tenant
    if sudo:
        if not ctx.is_admin:
            raise exceptions.Forbidden(
                "acting as another project (X-Auth-Sudo-Project-ID) needs the admin role"
            )
        ctx = dataclasses.replace(ctx, project_id=sudo, original_project_id=ctx.project_id)
    return ctx


def _check_roles(request: Request, roles: tuple[str, ...]) -> None:
    have = ", ".join(roles) or "none"
    if request.method in READ_METHODS:
        if not READ_ROLES.intersection(roles):
            raise exceptions.Forbidden(
                f"reading zones needs the reader, member or admin role (yours: {have})"
            )
    elif not WRITE_ROLES.intersection(roles):
        raise exceptions.Forbidden(
            f"changing zones needs the member or admin role (yours: {have}): ask your "
            "project's administrator for the member role"
        )


def _all_projects(request: Request) -> bool:
    values = [request.headers.get("X-Auth-All-Projects", "")]
    values += [request.query_params.get(name, "") for name in ("all_projects", "all_tenants")]
    return any(value.strip().lower() in _TRUE for value in values)
