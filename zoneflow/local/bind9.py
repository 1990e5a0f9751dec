"""A real BIND9 ``named`` on 127.0.0.1 (or ``host``) with its own config, rndc key and ports.

The server accepts ``rndc addzone`` (``allow-new-zones yes``), transfers and
notifies from 127.0.0.1 only, and does no recursion: it is a target of a pool,
as Designate's bind9 backend expects one.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
from collections.abc import Sequence
from pathlib import Path
from string import Template
from typing import Any

from zoneflow.local.nameserver import NameserverProcess
from zoneflow.local.ports import HOST, free_port
from zoneflow.local.process import require_program

RNDC_KEY_NAME = "rndc-key"

#: What doc/backends.md recommends in a pool target's ``options``, and what a
#: server started here has unless told otherwise. BIND9 sends the SOA query
#: that follows a NOTIFY (or an ``rndc addzone``) through a rate limiter of
#: ``serial-query-rate`` a second (20 by default), which releases them ten at
#: a time every half second: a NOTIFY'd serial was served 0.48 s later (p50)
#: at the default and 0.01 s later at 1000, and a server that gets more than 20
#: changes a second falls behind for good. ``transfers-per-ns`` (2 by default)
#: is how many zones it transfers from mdns at once.
RECOMMENDED_OPTIONS = ("serial-query-rate 1000", "transfers-per-ns 10")


def notify_options(listeners: Sequence[tuple[str, int]]) -> list[str]:
    """named.conf ``options`` statements (each without its semicolon) that have a
    target NOTIFY ``listeners`` (host, port) of every serial it loads, and no one else.

    At BIND9's defaults a zone's next NOTIFY waits ``notify-delay`` (5 s) after
    its last, and all of them keep to ``notify-rate`` (20 a second): word that
    late would tell when BIND9 got round to it, not when it served the zone.
    """
    addresses = " ".join(f"{host} port {port};" for host, port in listeners)
    return [
        "notify explicit",
        f"also-notify {{ {addresses} }}",
        "notify-delay 0",
        "notify-rate 1000",
    ]


# string.Template texts: named.conf is full of braces, and has no dollars.
KEY = """\
key "$key" {
	algorithm hmac-sha256;
	secret "$secret";
};
"""

# rndc ignores -k whenever /etc/bind/rndc.conf exists, so rndc() below uses
# a config file of its own.
RNDC_CONF = """\
options {
	default-key "$key";
	default-server $host;
	default-port $rndc_port;
};
"""

NAMED_CONF = """\
include "$key_file";

options {
	directory "$workdir";
	pid-file "$workdir/named.pid";
	session-keyfile "$workdir/session.key";
	managed-keys-directory "$workdir";
	listen-on port $port { $host; };
	listen-on-v6 { none; };
	recursion no;
	allow-new-zones yes;
$notify	allow-query { any; };
	allow-notify { $clients };
	allow-transfer { $clients };
	dnssec-validation no;
$catalog_options$extra_options};

controls {
	inet $host port $rndc_port allow { $clients } keys { "$key"; };
};
"""


class Bind9Server(NameserverProcess):
    """``named`` in the foreground; ``rndc`` reaches it through ``rndc_port``."""

    name = "named"

    def __init__(
        self,
        *,
        port: int | None = None,
        rndc_port: int | None = None,
        workdir: Path | str | None = None,
        start_timeout: float = 60.0,
        tsig_keys: dict[str, str] | None = None,
        catalog: tuple[str, str, int] | None = None,
        host: str = HOST,
        allow_from: Sequence[str] = (),
        options: Sequence[str] = RECOMMENDED_OPTIONS,
        also_notify: Sequence[tuple[str, int]] = (),
    ) -> None:
        """``tsig_keys`` (name -> base64 secret, hmac-sha256) go into named.conf.

        ``catalog`` (zone name, primary host, port) makes this server a
        consumer of that catalog zone (RFC 9432): member zones come and go
        with the catalog, transferred from the same primary.

        ``host`` is the address it listens on (DNS and rndc); ``allow_from``
        more addresses or networks, besides ``host``, that may use rndc,
        send NOTIFY and transfer zones (a client in another network
        namespace, say).

        ``options``: more statements for named.conf's ``options`` block, each
        without its semicolon; by default RECOMMENDED_OPTIONS, ``()`` for
        BIND9's own defaults.

        ``also_notify``: (host, port) of each listener this server NOTIFYs
        each time it loads a new serial of any zone, its first transfer
        included; by default it NOTIFYs no one. mdns among them passes the
        word to the polls (doc/backends.md); a bench learns from it the moment
        a target serves a change, without asking it again and again.
        """
        self.named = require_program("named")
        self.rndc_program = require_program("rndc")
        super().__init__(port=port, workdir=workdir, start_timeout=start_timeout, host=host)
        self.allow_from = tuple(allow_from)
        self.rndc_port = rndc_port if rndc_port is not None else free_port()
        self.conf_path = self.workdir / "named.conf"
        self.rndc_key_file = self.workdir / "rndc.key"
        self.rndc_conf_file = self.workdir / "rndc.conf"
        self._secret = base64.b64encode(secrets.token_bytes(32)).decode()
        self.tsig_keys = dict(tsig_keys or {})
        self.catalog = catalog
        self.options = tuple(options)
        self.also_notify = tuple(also_notify)

    def prepare(self) -> None:
        values = {
            "key": RNDC_KEY_NAME,
            "secret": self._secret,
            "host": self.host,
            "port": self.port,
            "rndc_port": self.rndc_port,
            "workdir": self.workdir,
            "key_file": self.rndc_key_file,
            "catalog_options": "",
            "notify": "\tnotify no;\n",
            "extra_options": "".join(f"\t{option};\n" for option in self.options),
            "clients": "".join(f"{client}; " for client in (self.host, *self.allow_from)),
        }
        if self.also_notify:
            values["notify"] = "".join(f"\t{line};\n" for line in notify_options(self.also_notify))
        if self.catalog is not None:
            name, host, port = self.catalog
            values["catalog_options"] = (
                f'\tcatalog-zones {{ zone "{name}" default-primaries {{ {host} port {port}; }} '
                "in-memory yes min-update-interval 0; };\n"
            )
        for path, template in (
            (self.rndc_key_file, KEY),
            (self.rndc_conf_file, KEY + RNDC_CONF),
            (self.conf_path, NAMED_CONF),
        ):
            path.write_text(Template(template).substitute(values))
            path.chmod(0o600)
        with self.conf_path.open("a") as conf:
            for name, secret in self.tsig_keys.items():
                conf.write(Template(KEY).substitute(key=name, secret=secret))
            if self.catalog is not None:
                name, host, port = self.catalog
                conf.write(
                    f'zone "{name}" {{ type secondary; primaries {{ {host} port {port}; }}; '
                    'file "catalog.db"; };\n'
                )

    def command(self) -> list[str]:
        # -g: foreground, log to stderr (our log file). No -u: as root, named
        # simply keeps running as root, which can write the work dir.
        # -n 2: named starts a worker per CPU; many servers on a big CI box
        # would otherwise start hundreds of threads for a test.
        return [self.named, "-g", "-n", "2", "-c", str(self.conf_path)]

    def control_ready(self) -> bool:
        return self.rndc("status", check=False, timeout=2).returncode == 0

    def rndc(
        self, *args: str, check: bool = True, timeout: float = 15.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``rndc <args>`` against this server; output is text."""
        return self.run_control(
            [self.rndc_program, "-c", str(self.rndc_conf_file), *args], check=check, timeout=timeout
        )

    def pool_target(
        self, masters: list[tuple[str, int]], *, tsig_key_name: str | None = None
    ) -> dict[str, Any]:
        """This server as a ``pools.yaml`` bind9 target fed by ``masters``."""
        target: dict[str, Any] = {
            "type": "bind9",
            "description": f"local BIND9 on {self.host}:{self.port}",
            "masters": [{"host": host, "port": port} for host, port in masters],
            "options": {
                "host": self.host,
                "port": self.port,
                "rndc_host": self.host,
                "rndc_port": self.rndc_port,
                "rndc_key_file": str(self.rndc_key_file),
            },
        }
        if tsig_key_name:
            target["options"]["tsig_key_name"] = tsig_key_name
        return target
