"""A real Knot DNS ``knotd`` on 127.0.0.1 with its own work dir, port and control socket.

knotd runs from a configuration *database* (confdb), not from a text file:
``knotc conf-begin/conf-set/conf-commit``, which the knot backend uses, only
work on a confdb. The fixture writes knot.conf, imports it once with
``knotc -C confdb conf-import`` and runs ``knotd -C confdb -s knot.sock``. A
restart keeps the confdb, so zones the backend added survive it as they
would on a real server.

The config holds a TSIG key ``zoneflow-test`` for backends that sign their
transfers, and two acls allowing NOTIFY from 127.0.0.1 (unsigned, and signed
with the key) that an operator's template could use. The default template
uses neither: a zone accepts exactly what the backend configures for it.

With ``catalog`` the server also consumes a catalog zone (RFC 9432): knotd
transfers it from the given primary and adds or removes member zones as its
PTRs come and go, each made from the ``catalog-member`` template (same
primary, NOTIFY accepted from it). Members then live in knotd's catalog
database (db/catalog), not in the confdb.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
from pathlib import Path
from string import Template
from typing import Any

from zoneflow.local.nameserver import NameserverProcess
from zoneflow.local.process import require_program, run_checked

TSIG_KEY_NAME = "zoneflow-test"

KNOT_CONF = """\
server:
    rundir: "$workdir"
    pidfile: "$workdir/knot.pid"
    listen: $host@$port
    # A few threads are plenty for a test, however many CPUs the box has.
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

log:
  - target: stderr
    any: info

database:
    storage: "$workdir/db"

key:
  - id: $key
    algorithm: hmac-sha256
    secret: $secret

${catalog_remote}acl:
  - id: localhost-notify
    address: $host
    action: notify
  - id: localhost-notify-signed
    address: $host
    key: $key
    action: notify
$catalog_acl
template:
  - id: default
    storage: "$workdir/zones"
$catalog_zone"""

# Knot resolves references while reading, so the remote comes before the
# template and zone naming it. The catalog and its members keep no zone
# file: a transfer lands in the journal (kept whole, so a restart serves
# the zones again at once), and no zone file write trails each transfer.
CATALOG_REMOTE = """\
remote:
  - id: catalog-primary
    address: $primary_host@$primary_port

"""

CATALOG_ACL = """\
  - id: catalog-primary-notify
    address: $primary_host
    action: notify
"""

CATALOG_ZONE = """\
  - id: catalog-member
    storage: "$workdir/zones"
    master: catalog-primary
    acl: catalog-primary-notify
    zonefile-sync: -1
    zonefile-load: none
    journal-content: all

zone:
  - domain: $catalog
    storage: "$workdir/zones"
    master: catalog-primary
    acl: catalog-primary-notify
    zonefile-sync: -1
    zonefile-load: none
    journal-content: all
    catalog-role: interpret
    catalog-template: catalog-member
"""


class KnotServer(NameserverProcess):
    """``knotd`` in the foreground; ``knotc -s socket`` drives it."""

    name = "knotd"

    def __init__(
        self,
        *,
        port: int | None = None,
        workdir: Path | str | None = None,
        start_timeout: float = 60.0,
        tsig_secret: str | None = None,
        catalog: tuple[str, str, int] | None = None,
    ) -> None:
        """``tsig_secret`` (base64) is the secret of key ``zoneflow-test``; default random.

        ``catalog`` (zone name, primary host, port) makes this server a
        consumer of that catalog zone, its members transferred from the
        same primary.
        """
        self.knotd = require_program("knotd")
        self.knotc_program = require_program("knotc")
        super().__init__(port=port, workdir=workdir, start_timeout=start_timeout)
        self.conf_path = self.workdir / "knot.conf"
        self.confdb = self.workdir / "confdb"
        self.socket = self.workdir / "knot.sock"
        self.tsig_key_name = TSIG_KEY_NAME
        self.tsig_secret = tsig_secret or base64.b64encode(secrets.token_bytes(32)).decode()
        self.catalog = catalog

    def prepare(self) -> None:
        if self.confdb.exists():
            return  # a restart: the confdb holds what the backend configured since
        for name in ("db", "zones"):
            (self.workdir / name).mkdir(exist_ok=True)
        values = {
            "workdir": self.workdir,
            "host": self.host,
            "port": self.port,
            "key": self.tsig_key_name,
            "secret": self.tsig_secret,
            "catalog_remote": "",
            "catalog_acl": "",
            "catalog_zone": "",
        }
        if self.catalog is not None:
            catalog, primary_host, primary_port = self.catalog
            values.update(catalog=catalog, primary_host=primary_host, primary_port=primary_port)
            for key, text in (
                ("catalog_remote", CATALOG_REMOTE),
                ("catalog_acl", CATALOG_ACL),
                ("catalog_zone", CATALOG_ZONE),
            ):
                values[key] = Template(text).substitute(values)
        self.conf_path.write_text(Template(KNOT_CONF).substitute(values))
        self.conf_path.chmod(0o600)
        run_checked(
            [self.knotc_program, "-C", str(self.confdb), "conf-import", str(self.conf_path)],
            "knotc conf-import",
            cwd=self.workdir,
            options={},
            timeout=30,
        )

    def command(self) -> list[str]:
        return [self.knotd, "-C", str(self.confdb), "-s", str(self.socket)]

    def control_ready(self) -> bool:
        return self.knotc("status", check=False, timeout=2).returncode == 0

    def knotc(
        self, *args: str, check: bool = True, timeout: float = 15.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``knotc -s <socket> <args>`` against this server; output is text."""
        return self.run_control(
            [self.knotc_program, "-s", str(self.socket), *args], check=check, timeout=timeout
        )

    def pool_target(
        self, masters: list[tuple[str, int]], tsig_key_name: str | None = None
    ) -> dict[str, Any]:
        """This server as a ``pools.yaml`` knot target fed by ``masters``."""
        options: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "knotc_socket": str(self.socket),
        }
        if tsig_key_name is not None:
            options["tsig_key_name"] = tsig_key_name
        return {
            "type": "knot",
            "description": f"local Knot on {self.host}:{self.port}",
            "masters": [{"host": host, "port": port} for host, port in masters],
            "options": options,
        }
