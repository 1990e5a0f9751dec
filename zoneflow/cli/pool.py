"""``zoneflow pool``: load pools from pools.yaml, list and show them, and what each
target serves of the pool's zones."""

from __future__ import annotations

import argparse
import json
from typing import Any

from zoneflow import objects
from zoneflow.central import health, pools
from zoneflow.central import status as serving
from zoneflow.cli import output


def _zones(count: int) -> str:
    return f"{count} zone" if count == 1 else f"{count} zones"


def _update_summary(update: objects.PoolUpdate) -> str:
    """One line per pool: its size now, and the work the update scheduled."""
    pool = update.pool
    parts = [
        f"pool {pool.name}: {len(pool.targets)} target(s), {len(pool.nameservers)} nameserver(s)"
    ]
    added = [f"target {t.label}" for t in update.added_targets]
    added += [f"nameserver {n}" for n in update.added_nameservers]
    if added:
        parts.append(f"{', '.join(added)} added, {_zones(update.backfill)} to backfill")
    for target in update.retired_targets:
        parts.append(
            f"target {target.label} retired, {_zones(update.to_delete[target.id])} to delete "
            "from it"
        )
    for target in update.draining_targets:
        parts.append(
            f"target {target.label} still retired, {_zones(update.to_delete[target.id])} to "
            "delete from it (drain posted again)"
        )
    for target in update.removed_targets:
        parts.append(
            f"target {target.label} removed; catalog provisioning makes no per-zone call, so it "
            f"serves the pool's zones until its own configuration drops {pool.catalog_zone}"
        )
    return "; ".join(parts)


def update(args: argparse.Namespace) -> int:
    for change in pools.update(args.file):
        print(_update_summary(change))
    return 0


def list_(args: argparse.Namespace) -> int:
    found = pools.list_pools()
    if args.json:
        output.list_(args, found, [])
        return 0
    print(
        output.table(
            [[p.name, p.id, len(p.targets), p.threshold_percentage] for p in found],
            ["name", "id", "targets", "threshold_percentage"],
        )
    )
    return 0


def _masked(options: dict[str, Any]) -> dict[str, Any]:
    """Target options with secrets (an API key, a password) replaced by ``***``."""
    return {
        name: "***" if name.endswith(("api_key", "password", "secret")) else value
        for name, value in options.items()
    }


def _state(states: dict[str, objects.TargetState], target: objects.PoolTarget) -> str:
    """A target's health, and its maintenance if any: "DOWN since ...", "UP, maintenance ON"."""
    state = states.get(target.id)
    if state is None:
        return objects.TargetHealth.UP
    shown = str(state.health)
    if state.health == objects.TargetHealth.DOWN:
        shown += f" since {output.plain(state.since)}"
    if state.maintenance is not None:
        shown += f", maintenance {state.maintenance}"
    return shown


def show(args: argparse.Namespace) -> int:
    pool = pools.get_pool(args.name)
    left = pools.zones_to_drain(pool)
    if args.json:
        shown = output.plain(pool)
        for target in shown["targets"] + shown["retired_targets"]:
            target["options"] = _masked(target["options"])
        for target in shown["retired_targets"]:
            target["zones_to_delete"] = left[target["id"]]
        print(json.dumps(shown, indent=2, sort_keys=True))
        return 0
    print(f"pool {pool.name} ({pool.id}), threshold {pool.threshold_percentage}%")
    if pool.catalog_zone:
        print(
            f"catalog:     {pool.catalog_zone} (refresh {pool.catalog_zone_refresh}s), "
            f"provisioning {pool.provisioning}"
        )
    print("ns_records:  " + ", ".join(f"{r.hostname} ({r.priority})" for r in pool.ns_records))
    print("nameservers: " + ", ".join(str(n) for n in pool.nameservers))
    if pool.also_notifies:
        print("also_notifies: " + ", ".join(str(n) for n in pool.also_notifies))
    states = health.states()
    print(
        output.table(
            [
                [t.id, t.type, t.label, ", ".join(str(m) for m in t.masters), _state(states, t)]
                for t in pool.targets
            ],
            ["target", "type", "description", "masters", "state"],
        )
    )
    if pool.retired_targets:
        print("retired targets, the pool's zones being deleted from them:")
        print(
            output.table(
                [
                    [
                        t.id,
                        t.type,
                        t.label,
                        output.plain(t.retired_at),
                        left[t.id],
                        t.drain_error or "",
                    ]
                    for t in pool.retired_targets
                ],
                ["target", "type", "description", "retired", "zones left", "last error"],
            )
        )
    return 0


def status(args: argparse.Namespace) -> int:
    found = serving.pool_serving(args.name)
    pool = found.pool
    rows = found.rows(output.plain)
    if args.json:
        shown = {"pool_id": pool.id, "pool": pool.name, "zones": found.zones, "targets": rows}
        print(json.dumps(shown, indent=2, sort_keys=True))
        return 0
    print(f"pool {pool.name} ({pool.id}): {_zones(found.zones)}")
    columns = ["target", "served", "behind", "missing", "error", "state", "last_seen"]
    print(
        output.table(
            [[row[c] if row[c] is not None else "-" for c in columns] for row in rows],
            ["target", "served", "behind", "missing", "error", "state", "last seen"],
        )
    )
    return 0


def maintenance(args: argparse.Namespace) -> int:
    """``zoneflow pool target maintenance TARGET on|off``."""
    target, state = health.set_maintenance(args.target, on=args.state == "on")
    if args.json:
        print(json.dumps({"target": target.label, **output.plain(state)}, indent=2, sort_keys=True))
        return 0
    if state.maintenance == objects.Maintenance.ON:
        print(
            f"target {target.label} in maintenance since {output.plain(state.maintenance_since)}: "
            "left out of the pool's threshold; the zones it misses are recorded behind"
        )
    elif state.maintenance == objects.Maintenance.CATCHING_UP:
        print(
            f"target {target.label} out of maintenance: catching up on the zones it missed, "
            "counted again once it serves them all ('zoneflow pool show' shows it)"
        )
    else:
        print(f"target {target.label} is not in maintenance: counted by the pool's threshold")
    return 0
