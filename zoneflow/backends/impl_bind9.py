"""BIND9 through rndc: the zone is added as a secondary of mdns, and deleted again.

Target options (Designate's names):

``host``, ``port``        the DNS server (polled and NOTIFY'd by the flows)
``rndc_host``             default 127.0.0.1
``rndc_port``             default 953
``rndc_key_file``         a file holding the rndc ``key "name" { ... };`` clause
``rndc_config_file``      a whole rndc.conf instead (takes precedence)
``rndc_timeout``          seconds an rndc call may take, default 10
``rndc_client``           ``protocol`` (default): speak rndc's protocol over connections
                          kept open (rndc_protocol.py); ``program``: run ``rndc``
``clean_zonefile``        delete the zone's file with the zone, default true
``tsig_key_name``         transfer from the masters signed with this key: it must be
                          defined in named.conf and in zoneflow's ``[tsig] key``

A process per command costs tens of milliseconds of CPU for a command named
answers in well under one (bench/rndc_cost.py), so by default the backend
talks to named's control channel itself, over connections every backend
instance of the process shares. The ``rndc`` program stays as a fallback
that needs no code change: for a BIND release whose control channel this
client no longer speaks, or an rndc.conf using what rndc_config.py does not
read. Both give the same errors and messages. rndc ignores ``-k`` whenever
/etc/bind/rndc.conf exists, so the program is always given a small rndc.conf
of our own with ``-c``.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from typing import Any

from zoneflow import exceptions, objects
from zoneflow.backends import rndc_config, rndc_protocol
from zoneflow.backends.base import Backend

PROTOCOL, PROGRAM = "protocol", "program"

_KEY_NAME = re.compile(r'key\s+"?([^"\s{]+)"?\s*\{')


class Bind9Backend(Backend):
    def __init__(self, target: objects.PoolTarget) -> None:
        super().__init__(target)
        options: dict[str, Any] = target.options
        self.rndc_host = str(options.get("rndc_host", "127.0.0.1"))
        self.rndc_port = int(options.get("rndc_port", 953))
        self.timeout = float(options.get("rndc_timeout", 10))
        self.clean = bool(options.get("clean_zonefile", True))
        self.key_file = options.get("rndc_key_file")
        self.config_file = options.get("rndc_config_file")
        self.tsig_key_name = options.get("tsig_key_name")
        self.client = str(options.get("rndc_client", PROTOCOL))

    # --- the contract --------------------------------------------------------

    def create_zone(self, zone: objects.Zone) -> None:
        key = f' key "{self.tsig_key_name}"' if self.tsig_key_name else ""
        primaries = " ".join(f"{m.host} port {m.port}{key};" for m in self.target.masters)
        if not primaries:
            raise exceptions.BackendError(
                self.target.label, "no masters configured: list mdns under the target's masters"
            )
        spec = f'{{ type secondary; primaries {{ {primaries} }}; file "{self._file(zone)}"; }};'
        self.rndc("addzone", zone.name, spec, ok_errors=("already exists",))

    def delete_zone(self, zone: objects.Zone) -> None:
        args = ["delzone", "-clean", zone.name] if self.clean else ["delzone", zone.name]
        self.rndc(*args, ok_errors=("not found",))

    # --- rndc ------------------------------------------------------------------

    @staticmethod
    def _file(zone: objects.Zone) -> str:
        # Zone names cannot escape named's directory through the file name.
        digest = hashlib.sha1(zone.name.encode(), usedforsecurity=False).hexdigest()[:8]
        safe = re.sub(r"[^a-z0-9.-]", "_", zone.name.rstrip("."))
        return f"zoneflow-{safe}-{digest}.db"

    def rndc(self, *args: str, ok_errors: tuple[str, ...] = ()) -> str:
        """Run one rndc command against the target; its output.

        An error whose output holds one of ``ok_errors`` counts as done (what
        makes create and delete idempotent); any other raises BackendError.
        """
        if self.client == PROTOCOL:
            status, output = self._call(args)
        elif self.client == PROGRAM:
            status, output = self._run_program(args)
        else:
            raise exceptions.BackendError(
                self.target.label,
                f"rndc_client must be {PROTOCOL!r} or {PROGRAM!r}, not {self.client!r}",
            )
        if status == 0 or any(text in output for text in ok_errors):
            return output
        raise self._error(args[0], output)

    def _call(self, args: tuple[str, ...]) -> tuple[int, str]:
        """One command over the kept connections: an exit status and what rndc would print."""
        try:
            key = rndc_config.load_key(
                key_file=self.key_file, config_file=self.config_file, server=self.rndc_host
            )
            client = rndc_protocol.client(self.rndc_host, self.rndc_port, key)
            reply = client.call(" ".join(args), timeout=self.timeout)
        except exceptions.RndcKeyError as exc:
            raise exceptions.BackendError(self.target.label, str(exc)) from None
        except exceptions.RndcTimeout:
            raise self._no_answer(args[0]) from None
        except exceptions.RndcConnectFailed as exc:
            raise self._cannot_connect(exc.reason) from None
        except exceptions.RndcClosed:
            raise self._closed() from None
        except exceptions.RndcError as exc:
            raise exceptions.BackendError(
                self.target.label, f"rndc {args[0]} to {self._where()} failed: {exc}"
            ) from None
        return (0 if reply.ok else 1), reply.output()

    def _run_program(self, args: tuple[str, ...]) -> tuple[int, str]:
        with tempfile.TemporaryDirectory(prefix="zoneflow-rndc-") as tmp:
            where = ["-c", self._config(tmp), "-s", self.rndc_host, "-p", str(self.rndc_port)]
            return self.run_control(
                "rndc",
                "bind9-utils",
                [*where, *args],
                timeout=self.timeout,
                no_answer=lambda: self._no_answer(args[0]),
            )

    def _config(self, tmp: str) -> str:
        if self.config_file:
            return str(self.config_file)
        path = os.path.join(tmp, "rndc.conf")
        if not self.key_file:
            # No key given: rndc's defaults, but never /etc/bind/rndc.conf silently.
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(
                    'include "/etc/bind/rndc.key";\noptions { default-key "rndc-key"; };\n'
                )
            return path
        try:
            with open(self.key_file, encoding="utf-8") as handle:
                match = _KEY_NAME.search(handle.read())
        except OSError as exc:
            raise exceptions.BackendError(
                self.target.label, f"cannot read rndc_key_file {self.key_file}: {exc.strerror}"
            ) from exc
        if match is None:
            raise exceptions.BackendError(
                self.target.label,
                f"rndc_key_file {self.key_file} holds no 'key \"name\" {{ ... }};' clause",
            )
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(
                f'include "{self.key_file}";\noptions {{ default-key "{match.group(1)}"; }};\n'
            )
        return path

    def _where(self) -> str:
        return f"{self.rndc_host}:{self.rndc_port}"

    def _no_answer(self, command: str) -> exceptions.BackendError:
        return exceptions.BackendUnreachable(
            self.target.label,
            f"rndc {command} got no answer from {self._where()} in {self.timeout:g}s: "
            "is named running and its controls channel open to us?",
        )

    def _cannot_connect(self, reason: str) -> exceptions.BackendError:
        return exceptions.BackendUnreachable(
            self.target.label,
            f"rndc cannot connect to {self._where()} ({reason}): is named running "
            "with a controls channel on that address and port?",
        )

    def _closed(self) -> exceptions.BackendError:
        return exceptions.BackendError(
            self.target.label,
            f"named at {self._where()} closed the rndc connection: the rndc key does not match "
            "the server's, or this host is not in the controls allow list",
        )

    def _error(self, command: str, output: str) -> exceptions.BackendError:
        first = output.splitlines()[0] if output else "no output"
        if "connection refused" in output or "connect failed" in output:
            return self._cannot_connect("connection refused")
        if "connection to remote host closed" in output:
            return self._closed()
        if "permission denied" in output.lower() or "allow-new-zones" in output:
            return exceptions.BackendError(
                self.target.label,
                f"rndc {command} refused by named: set 'allow-new-zones yes;' in named.conf "
                f"({first})",
            )
        return exceptions.BackendError(self.target.label, f"rndc {command} failed: {first}")
