"""The TSIG keys mdns verifies requests with: configured ones and stored ones.

``[tsig] key`` lines (read once, at start) and the keys managed through
``/v2/tsigkeys`` (read from the database, again every few seconds), so a key
created through the API signs transfers without restarting mdns. A
configured key wins over a stored one of the same name (the API refuses
such names anyway). A database that cannot be read keeps the keys last
read: transfers go on while it is away.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from typing import Any

import dns.name
import dns.tsig

from zoneflow import exceptions
from zoneflow.dns import tsig
from zoneflow.storage import tsigkeys

LOG = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0


class Keyring:
    """A keyring dnspython calls (``keyring(message, name)``) and mdns indexes."""

    def __init__(
        self, configured: tsig.Keyring | None = None, *, refresh: float = REFRESH_SECONDS
    ) -> None:
        self.configured = tsig.configured_keyring() if configured is None else configured
        self.refresh = refresh
        self._stored: tsig.Keyring = {}
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def __call__(self, _message: Any, name: dns.name.Name) -> dns.tsig.Key | None:
        return self.get(name)

    def get(self, name: dns.name.Name) -> dns.tsig.Key | None:
        return self.configured.get(name) or self._current().get(name)

    def __getitem__(self, name: dns.name.Name) -> dns.tsig.Key:
        key = self.get(name)
        if key is None:
            raise KeyError(name)
        return key

    def __contains__(self, name: object) -> bool:
        return isinstance(name, dns.name.Name) and self.get(name) is not None

    def _current(self) -> tsig.Keyring:
        now = time.monotonic()
        with self._lock:
            if now - self._read_at >= self.refresh:
                self._read_at = now
                try:
                    self._stored = _stored_keys()
                except exceptions.ServiceUnavailable as exc:
                    LOG.warning("TSIG keys not re-read from the database: %s", exc)
            return self._stored


def _stored_keys() -> tsig.Keyring:
    keyring: tsig.Keyring = {}
    for key in tsigkeys.list_tsigkeys():
        name = dns.name.from_text(key.name)
        keyring[name] = dns.tsig.Key(
            name, base64.b64decode(key.secret), tsig.ALGORITHMS[key.algorithm]
        )
    return keyring
