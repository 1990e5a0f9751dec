"""PowerDNS Authoritative through its HTTP API: the zone is added as a secondary of mdns.

Target options (Designate's pdns4 names):

``host``, ``port``        the DNS server (polled and NOTIFY'd by the flows)
``api_endpoint``          the webserver, e.g. ``http://127.0.0.1:8081``
``api_key``               pdns.conf's ``api-key``
``api_server_id``         default ``localhost``
``api_timeout``           seconds an API call may take, default 10

pdns_server needs ``api=yes``, ``webserver=yes``, ``secondary=yes`` (``slave=yes``
before 4.5) and this host in ``webserver-allow-from``. A created zone is
retrieved from mdns at once (``axfr-retrieve``) rather than at the next NOTIFY
or refresh; later changes reach it by NOTIFY, so update needs no call.

The standard library's HTTP client is enough for four calls and keeps the
backend free of a dependency zoneflow does not otherwise declare.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

from zoneflow import exceptions, objects
from zoneflow.backends.base import Backend

LOG = logging.getLogger(__name__)

# "Slave" rather than "Secondary": every 4.x release accepts it.
_KIND = "Slave"
_ERROR_TEXT_LIMIT = 300
# Pauses before asking again after a 5xx answer. PowerDNS answers 500 for a
# moment now and then under load (seen on its SQLite backend); every call
# here is idempotent, so asking again is safe.
SERVER_ERROR_PAUSES = (0.2, 0.5)


class PowerDNSBackend(Backend):
    def __init__(self, target: objects.PoolTarget) -> None:
        super().__init__(target)
        # Checked when used, not here: stevedore swallows a constructor's error
        # and would report "no backend of type 'pdns'" instead.
        options: dict[str, Any] = target.options
        self.api_endpoint = str(options.get("api_endpoint") or "").rstrip("/")
        self.api_key = str(options.get("api_key") or "")
        self.server_id = str(options.get("api_server_id") or "localhost")
        self.timeout_option = options.get("api_timeout", 10)

    # --- the contract --------------------------------------------------------

    def create_zone(self, zone: objects.Zone) -> None:
        masters = [_master(m) for m in self.target.masters]
        if not masters:
            raise exceptions.BackendError(
                self.target.label, "no masters configured: list mdns under the target's masters"
            )
        body = {"name": zone.name, "kind": _KIND, "masters": masters}
        status, _ = self._call("POST", "/zones", body, ok=(409,))
        if status == 409:
            self._adopt(zone, masters)
        self._call("PUT", f"/zones/{_zone_id(zone.name)}/axfr-retrieve")

    def delete_zone(self, zone: objects.Zone) -> None:
        status, _ = self._call("DELETE", f"/zones/{_zone_id(zone.name)}", ok=(404,))
        if status == 404:
            # pdns answers a wrong server id with the same 404: make sure the
            # zone is gone from the right server, not that we asked the wrong one.
            self._check_server()

    def _check_server(self) -> None:
        """Raise BackendError when the API has no server ``api_server_id``."""
        status, _ = self._call("GET", "", ok=(404,))
        if status == 404:
            raise exceptions.BackendError(
                self.target.label,
                f"the PowerDNS API at {self.api_endpoint} has no server {self.server_id!r}: "
                "check api=yes in pdns.conf and the target's api_server_id (usually 'localhost')",
            )

    # --- the API -------------------------------------------------------------

    def _adopt(self, zone: objects.Zone, masters: list[str]) -> None:
        """Make an existing zone of the same name a secondary of ``masters``, or refuse."""
        _, found = self._call("GET", f"/zones/{_zone_id(zone.name)}?rrsets=false")
        kind = str(found.get("kind", "")) if isinstance(found, dict) else ""
        if kind not in ("Slave", "Secondary"):
            raise exceptions.BackendError(
                self.target.label,
                f"{zone.name} already exists on PowerDNS as a {kind or 'unknown'} zone, not a "
                "secondary: delete it there (pdnsutil delete-zone) so mdns can feed it",
            )
        current = sorted(found.get("masters") or [])
        if current != sorted(masters):
            LOG.info("%s on %s: masters %s -> %s", zone.name, self.target.label, current, masters)
            self._call("PUT", f"/zones/{_zone_id(zone.name)}", {"masters": masters})

    def _call(
        self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = ()
    ) -> tuple[int, Any]:
        """``method`` on ``/api/v1/servers/<id><path>``: (status, decoded JSON or None).

        A status listed in ``ok`` is returned like a success; any other error
        becomes a BackendError saying what to check.
        """
        timeout = self._timeout()
        request = urllib.request.Request(
            f"{self._base()}/api/v1/servers/{self.server_id}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"X-API-Key": self.api_key, "Content-Type": "application/json"},
        )
        what = f"{method} {path or '/'}"
        for pause in (*SERVER_ERROR_PAUSES, None):
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    return response.status, _decode(response.read())
            except urllib.error.HTTPError as exc:
                with exc:
                    if exc.code in ok:
                        return exc.code, None
                    text = _error_text(exc.read())
                if exc.code < 500 or pause is None:
                    raise self._http_error(what, exc.code, text) from None
                LOG.info(
                    "%s: %s answered %s, asking again: %s", self.target.label, what, exc.code, text
                )
            except urllib.error.URLError as exc:
                raise self._connection_error(what, exc.reason, timeout) from None
            except (OSError, http.client.HTTPException) as exc:
                # Timeouts and resets while reading the answer come unwrapped.
                raise self._connection_error(what, exc, timeout) from None
            time.sleep(pause)
        raise AssertionError("not reached: the last try returns or raises")

    def _base(self) -> str:
        if not self.api_endpoint.startswith(("http://", "https://")):
            raise exceptions.BackendError(
                self.target.label,
                f"api_endpoint {self.api_endpoint!r} is not an http:// or https:// URL: set it "
                "to pdns's webserver, e.g. http://127.0.0.1:8081",
            )
        if not self.api_key:
            raise exceptions.BackendError(
                self.target.label, "no api_key option: set it to pdns.conf's api-key"
            )
        return self.api_endpoint

    def _timeout(self) -> float:
        try:
            timeout = float(self.timeout_option)
        except (TypeError, ValueError):
            timeout = 0.0
        if timeout <= 0:
            raise exceptions.BackendError(
                self.target.label,
                f"api_timeout {self.timeout_option!r} is not a positive number of seconds",
            )
        return timeout

    def _http_error(self, what: str, status: int, text: str) -> exceptions.BackendError:
        where = self.api_endpoint
        if status == 401:
            return exceptions.BackendError(
                self.target.label,
                f"the PowerDNS API at {where} refused the api key (401 Unauthorized): check "
                "the target's api_key against pdns.conf's api-key",
            )
        if status == 404:
            return exceptions.BackendError(
                self.target.label,
                f"{what} not found on the PowerDNS API at {where} (404): check api=yes in "
                f"pdns.conf and the target's api_server_id ({self.server_id!r})",
            )
        return exceptions.BackendError(
            self.target.label, f"PowerDNS at {where} answered {what} with {status}: {text}"
        )

    def _connection_error(
        self, what: str, reason: object, timeout: float
    ) -> exceptions.BackendError:
        where = self.api_endpoint
        if isinstance(reason, TimeoutError):
            return exceptions.BackendUnreachable(
                self.target.label,
                f"the PowerDNS API at {where} did not answer {what} within {timeout:g}s: is "
                "pdns_server overloaded or the address wrong?",
            )
        if isinstance(reason, ConnectionRefusedError):
            return exceptions.BackendUnreachable(
                self.target.label,
                f"cannot connect to the PowerDNS API at {where} (connection refused): is "
                "pdns_server running with api=yes and its webserver on that address and port?",
            )
        if isinstance(reason, ConnectionError):
            return exceptions.BackendError(
                self.target.label,
                f"{where} closed the connection on {what}: is api_endpoint pdns's webserver, "
                "and this host in pdns.conf's webserver-allow-from?",
            )
        if isinstance(reason, http.client.HTTPException):
            return exceptions.BackendError(
                self.target.label,
                f"{where} did not answer {what} like an HTTP server ({type(reason).__name__}): "
                "is api_endpoint pdns's webserver address and port?",
            )
        detail = reason.strerror if isinstance(reason, OSError) and reason.strerror else reason
        return exceptions.BackendUnreachable(
            self.target.label, f"cannot reach the PowerDNS API at {where}: {detail}"
        )


def _master(master: objects.HostPort) -> str:
    host = f"[{master.host}]" if ":" in master.host else master.host
    return f"{host}:{master.port}"


def _zone_id(name: str) -> str:
    """The API's id for zone ``name``: the name with unusual bytes written ``=XX``."""
    absolute = name if name.endswith(".") else f"{name}."
    if absolute == ".":
        return "=2E"
    return "".join(_id_char(c) for c in absolute)


def _id_char(c: str) -> str:
    if c.isascii() and (c.isalnum() or c in ".-"):
        return c
    return "".join(f"={byte:02X}" for byte in c.encode())


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _error_text(raw: bytes) -> str:
    """pdns's own words for an error: the JSON ``error`` field, else the body."""
    decoded = _decode(raw)
    if isinstance(decoded, dict) and "error" in decoded:
        decoded = decoded["error"]
    text = str(decoded or "no details").strip()
    return text if len(text) <= _ERROR_TEXT_LIMIT else text[:_ERROR_TEXT_LIMIT] + "..."
