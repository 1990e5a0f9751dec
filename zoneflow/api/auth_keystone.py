"""The ``keystone`` strategy: tokens checked by keystonemiddleware's auth_token.

Configured as in Designate: ``[api] auth_strategy = keystone`` and a
``[keystone_authtoken]`` section, whose options are keystonemiddleware's
own (``www_authenticate_uri``, ``auth_url``, ``auth_type = password``,
``username``, ``password``, ``project_name``, ``memcached_servers``...)::

    [keystone_authtoken]
    www_authenticate_uri = http://keystone.example.net:5000
    auth_url = http://keystone.example.net:5000
    auth_type = password
    username = zoneflow
    password = ...
    project_name = service
    user_domain_name = Default
    project_domain_name = Default

auth_token is a WSGI middleware; zoneflow's API is ASGI. Each request's
headers are handed to the real middleware as a WSGI request (no body: a
token lives in the headers), which validates ``X-Auth-Token`` against
Keystone (caching the answer), drops any identity header the client sent
itself, and sets the ones Keystone vouches for: ``X-Identity-Status``,
``X-User-Id``, ``X-Project-Id``, ``X-Roles``. Those are what the caller
is. A request it refuses is answered 401 with Designate's error body and
auth_token's ``WWW-Authenticate`` header, which tells the client where
to get a token; Keystone unreachable is a 503.

Roles are Keystone's defaults, as in Designate: ``reader`` reads,
``member`` also changes its project's zones, ``admin`` may also see all
projects and act as one (see :mod:`zoneflow.api.auth`). A token scoped to
no project (a domain or system token) is refused: zones belong to projects.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import Request
from keystoneauth1 import exceptions as ksa_exceptions
from keystonemiddleware import auth_token
from oslo_config import cfg

from zoneflow import exceptions

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

CONFIRMED = "Confirmed"

StartResponse = Callable[..., Any]


class KeystoneAuth:
    # auth_token asks Keystone of a token it has not cached.
    blocking = True

    def __init__(self) -> None:
        self._middleware = auth_token.AuthProtocol(_Passed(), {"oslo_config_config": _own_config()})

    def identify(self, request: Request) -> tuple[str | None, str | None, tuple[str, ...]]:
        environ = _environ(request)
        answer = _Answer()
        try:
            body = b"".join(self._middleware(environ, answer))
        except ksa_exceptions.ClientException as exc:
            # What auth_token lets escape: Keystone's catalog lacks the identity
            # endpoint of [keystone_authtoken] interface, and the like.
            LOG.error("auth_token cannot check a token: %s", exc)
            raise exceptions.ServiceUnavailable(
                f"the token cannot be checked with Keystone ({exc}): check [keystone_authtoken] "
                "auth_url and interface (public, internal or admin: the identity endpoint "
                "that Keystone's catalog has)"
            ) from exc
        if answer.status != 200 or environ.get(_Passed.MARK) is not True:
            raise _refused(answer, body)
        if environ.get("HTTP_X_IDENTITY_STATUS") != CONFIRMED:
            raise exceptions.NotAuthenticated(
                "the token was not confirmed by Keystone: get a new one (openstack token issue)"
            )
        project = environ.get("HTTP_X_PROJECT_ID") or None
        if project is None:
            raise exceptions.Forbidden(
                "the token is scoped to no project: zones belong to projects, ask Keystone "
                "for a project-scoped token (--os-project-name)"
            )
        roles = environ.get("HTTP_X_ROLES", "")
        return (
            environ.get("HTTP_X_USER_ID") or None,
            project,
            tuple(role.strip().lower() for role in roles.split(",") if role.strip()),
        )


def _own_config() -> cfg.ConfigOpts:
    """zoneflow.conf read again for auth_token alone.

    auth_token registers the options of its ``auth_type`` (some of them
    required) where it reads its configuration; in a configuration of
    their own they cannot make zoneflow's fail to load elsewhere.
    """
    conf = cfg.ConfigOpts()
    conf([], project="zoneflow", default_config_files=list(CONF.config_file or []))
    return conf


class _Passed:
    """The WSGI app behind auth_token: reached only by requests it let through."""

    MARK = "zoneflow.authenticated"

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        environ[self.MARK] = True
        start_response("200 OK", [])
        return [b""]


class _Answer:
    """start_response: what auth_token answered, when it answered itself."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        self.status = int(status.split(" ", 1)[0])
        self.headers = headers


def _environ(request: Request) -> dict[str, Any]:
    """The request as a bodiless WSGI environ: what auth_token reads of it."""
    server = request.scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": request.url.path,
        "QUERY_STRING": request.url.query,
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": request.url.scheme,
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": _LOG_STREAM,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in request.headers.items():
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = f"HTTP_{key}"
        environ[key] = value
    return environ


def _refused(answer: _Answer, body: bytes) -> exceptions.ZoneflowError:
    headers = {k: v for k, v in answer.headers if k.lower() == "www-authenticate"}
    if answer.status == 401:
        where = headers.get("WWW-Authenticate", "")
        return exceptions.NotAuthenticated(
            "the request has no valid X-Auth-Token: get a token from Keystone "
            f"(openstack token issue){f' at {where}' if where else ''} and send it",
            headers=headers,
        )
    if answer.status == 503:
        return exceptions.ServiceUnavailable(
            "Keystone cannot be reached to check the token: check [keystone_authtoken] "
            "auth_url and that Keystone is up, then try again"
        )
    LOG.error("auth_token answered %s: %s", answer.status, body[:500])
    return exceptions.NotAuthenticated(f"the token was refused by Keystone ({answer.status})")


class _LogStream(io.TextIOBase):
    """wsgi.errors: what a WSGI component writes there goes to zoneflow's log."""

    _lock = threading.Lock()

    def write(self, text: str) -> int:
        if text.strip():
            with self._lock:
                LOG.warning("%s", text.rstrip())
        return len(text)


_LOG_STREAM = _LogStream()
