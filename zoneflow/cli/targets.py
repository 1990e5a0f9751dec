"""``zoneflow targets up``: run local nameservers as a pool until stopped."""

from __future__ import annotations

import argparse
import pathlib

from zoneflow import exceptions
from zoneflow.local import targets
from zoneflow.options import CONF


def up(args: argparse.Namespace) -> int:
    if CONF.mdns.port == 0:
        raise exceptions.InvalidConfig(
            "[mdns] port is 0 (any free port), so the targets cannot know where to transfer "
            "zones from: set a fixed port in zoneflow.conf"
        )
    directory = pathlib.Path(args.dir).resolve()
    # The servers run here: an mdns listening on every address is reached on loopback.
    mdns_host = "127.0.0.1" if CONF.mdns.host in ("0.0.0.0", "::") else CONF.mdns.host
    masters = [(mdns_host, CONF.mdns.port)]
    with targets.stopped_by_signals():
        servers = targets.start(args.kind, args.count, directory, notify=masters)
        try:
            pools_file = targets.write_pools(
                directory / "pools.yaml",
                [targets.pool(args.kind, servers, masters, name=args.pool)],
            )
            for server in servers:
                print(f"{server.workdir.name}  {server.host}:{server.port}  in {server.workdir}")
            print(
                f"pool {args.pool!r} written to {pools_file}, its targets fed by mdns at "
                f"{mdns_host}:{CONF.mdns.port}; load it with:\n"
                f"  zoneflow pool update --file {pools_file}\n"
                "serving until Ctrl-C (or SIGTERM, SIGHUP)",
                flush=True,
            )
            targets.wait_for_stop()
        finally:
            targets.stop(servers)
    print("stopped every server")
    return 0
