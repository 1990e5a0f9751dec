"""The inspector against a real BIND9 killed and started again (PostgreSQL,
ZooKeeper, every daemon a process of its own; tests/functional/outage.py).

Killed: the alarm reaches a client of ``GET /v2/events``. While it is down,
a zone is changed, one deleted and one created, and each fails under the
pool's 100% threshold. Started again: every one of them converges with no
operator action, checked by asking each BIND9.
"""

from __future__ import annotations

import pathlib
import time

from tests.functional import outage
from tests.functional.conftest import Bind9Factory
from tests.functional.fixtures.zookeeper import ZooKeeperServer
from tests.support import eventually

EMAIL = "hostmaster@outage.example"


def test_a_killed_bind9_raises_the_alarm_and_what_it_missed_converges_when_it_is_back(
    tmp_path: pathlib.Path,
    postgres_database: str,
    zookeeper: ZooKeeperServer,
    bind9_factory: Bind9Factory,
) -> None:
    binds = bind9_factory(2)
    alive, dead = binds
    running = outage.deployment(
        tmp_path, database=postgres_database, zookeeper_hosts=zookeeper.hosts, binds=binds
    )
    stream = None
    try:
        names = ["kept.outage.", "changed.outage.", "deleted.outage."]
        ids = running.api_create_zones(names, EMAIL)
        eventually(
            lambda: all(running.api_zone_statuses().get(n) == "ACTIVE" for n in names),
            timeout=60,
            what="the zones to be ACTIVE",
        )
        serials = {n: running.api("GET", f"/v2/zones/{ids[n]}")["serial"] for n in names}
        stream = outage.EventStream(running.api_url, types="alarm,target")
        dead_id = outage.target_id(running, dead)

        killed_at = time.monotonic()
        dead.kill()
        arrived, alarm = stream.next(outage.is_target_event(dead_id, "alarm", "DOWN"), 30)
        print(f"alarm {arrived - killed_at:.3f} s after the kill")
        assert alarm["value"]["target"] == f"local BIND9 on {dead.host}:{dead.port}"
        assert alarm["value"]["zones_behind"] == len(names)
        stream.next(outage.is_target_event(dead_id, "target", "DOWN"), 10)

        running.api(
            "POST",
            f"/v2/zones/{ids['changed.outage.']}/recordsets",
            {"name": "www.changed.outage.", "type": "A", "records": ["192.0.2.7"]},
        )
        running.api("DELETE", f"/v2/zones/{ids['deleted.outage.']}")
        created = running.api("POST", "/v2/zones", {"name": "created.outage.", "email": EMAIL})
        failed = ["changed.outage.", "deleted.outage.", "created.outage."]
        eventually(
            lambda: all(running.api_zone_statuses().get(n) == "ERROR" for n in failed),
            timeout=60,
            what=lambda: f"the changes to fail under 100%: {running.api_zone_statuses()}",
        )

        dead.start()
        stream.next(outage.is_target_event(dead_id, "target", "UP"), 60)
        changed = running.api("GET", f"/v2/zones/{ids['changed.outage.']}")["serial"]
        assert changed > serials["changed.outage."]
        outage.wait_served(binds, "changed.outage.", changed, timeout=60)
        outage.wait_served(binds, "created.outage.", created["serial"], timeout=60)
        outage.wait_served(binds, "deleted.outage.", None, timeout=60)
        outage.wait_served(binds, "kept.outage.", serials["kept.outage."], timeout=10)
        eventually(
            lambda: (
                running.api_zone_statuses()
                == {
                    "kept.outage.": "ACTIVE",
                    "changed.outage.": "ACTIVE",
                    "created.outage.": "ACTIVE",
                }
            ),
            timeout=60,
            what=lambda: f"every zone ACTIVE, the deleted one gone: {running.api_zone_statuses()}",
        )
        rows = running.api("GET", f"/v2/zones/{ids['kept.outage.']}/status")["targets"]
        assert {(r["status"], r["current"]) for r in rows} == {("ACTIVE", True)}

        def inspector_reports() -> bool:
            services = running.api("GET", "/v2/service_statuses")["service_statuses"]
            (inspector,) = [s for s in services if s["service_name"] == "inspector"]
            stats = inspector["stats"]
            return inspector["status"] == "UP" and (stats["alarms"], stats["down"]) == (1, [])

        # Its heartbeat, every [heartbeat] interval: the last may predate the return.
        eventually(inspector_reports, timeout=60, what="the inspector's heartbeat")
    finally:
        if stream is not None:
            stream.close()
        running.close()


def test_under_50_percent_a_change_is_active_without_waiting_for_a_bind9_judged_down(
    tmp_path: pathlib.Path,
    postgres_database: str,
    zookeeper: ZooKeeperServer,
    bind9_factory: Bind9Factory,
) -> None:
    """The pool's threshold does not need the BIND9 that died: once the inspector has
    judged it DOWN, a change is ACTIVE as soon as the other serves it, not at the end
    of a poll that waits for the dead one; it reaches the dead one once it is back."""
    binds = bind9_factory(2)
    alive, dead = binds
    running = outage.deployment(
        tmp_path,
        database=postgres_database,
        zookeeper_hosts=zookeeper.hosts,
        binds=binds,
        threshold=50,
        # Far past the waits below: a poll that waited for the dead BIND9 would fail them.
        poll_timeout=300,
    )
    stream = None
    try:
        (zone_id,) = running.api_create_zones(["changed.half."], EMAIL).values()
        eventually(
            lambda: running.api_zone_statuses().get("changed.half.") == "ACTIVE",
            timeout=60,
            what="the zone to be ACTIVE",
        )
        stream = outage.EventStream(running.api_url, types="alarm")
        dead_id = outage.target_id(running, dead)
        dead.kill()
        stream.next(outage.is_target_event(dead_id, "alarm", "DOWN"), 30)

        changed = running.api(
            "POST",
            f"/v2/zones/{zone_id}/recordsets",
            {"name": "www.changed.half.", "type": "A", "records": ["192.0.2.9"]},
        )["serial"]
        zone = eventually(
            lambda: (z := running.api("GET", f"/v2/zones/{zone_id}"))["status"] == "ACTIVE" and z,
            timeout=60,
            interval=0.2,
            what=lambda: f"the change ACTIVE: {running.api_zone_statuses()}",
        )
        assert zone["serial"] == changed
        outage.wait_served([alive], "changed.half.", changed, timeout=10)
        rows = {
            r["target_id"]: r for r in running.api("GET", f"/v2/zones/{zone_id}/status")["targets"]
        }
        assert not rows[dead_id]["current"]

        dead.start()
        outage.wait_served(binds, "changed.half.", changed, timeout=60)
        eventually(
            lambda: (
                {
                    (r["status"], r["current"])
                    for r in running.api("GET", f"/v2/zones/{zone_id}/status")["targets"]
                }
                == {("ACTIVE", True)}
            ),
            timeout=60,
            what=lambda: (
                f"both targets' rows ACTIVE and current: "
                f"{running.api('GET', f'/v2/zones/{zone_id}/status')['targets']}"
            ),
        )
    finally:
        if stream is not None:
            stream.close()
        running.close()


def test_a_bind9_in_maintenance_is_left_out_of_100_percent_and_caught_up_after(
    tmp_path: pathlib.Path,
    postgres_database: str,
    zookeeper: ZooKeeperServer,
    bind9_factory: Bind9Factory,
) -> None:
    binds = bind9_factory(2)
    alive, away = binds
    running = outage.deployment(
        tmp_path, database=postgres_database, zookeeper_hosts=zookeeper.hosts, binds=binds
    )
    try:
        names = ["changed.maint.", "deleted.maint."]
        ids = running.api_create_zones(names, EMAIL)
        eventually(
            lambda: all(running.api_zone_statuses().get(n) == "ACTIVE" for n in names),
            timeout=60,
            what="the zones to be ACTIVE",
        )
        label = f"local BIND9 on {away.host}:{away.port}"
        said = running.cli("pool", "target", "maintenance", label, "on").stdout
        assert "in maintenance since" in said
        away.kill()

        running.api(
            "POST",
            f"/v2/zones/{ids['changed.maint.']}/recordsets",
            {"name": "www.changed.maint.", "type": "A", "records": ["192.0.2.8"]},
        )
        running.api("DELETE", f"/v2/zones/{ids['deleted.maint.']}")
        created = running.api("POST", "/v2/zones", {"name": "created.maint.", "email": EMAIL})
        eventually(
            lambda: (
                running.api_zone_statuses()
                == {"changed.maint.": "ACTIVE", "created.maint.": "ACTIVE"}
            ),
            timeout=60,
            what=lambda: f"the changes made on the other target: {running.api_zone_statuses()}",
        )
        changed = running.api("GET", f"/v2/zones/{ids['changed.maint.']}")["serial"]
        outage.wait_served([alive], "changed.maint.", changed, timeout=10)
        outage.wait_served([alive], "created.maint.", created["serial"], timeout=10)
        outage.wait_served([alive], "deleted.maint.", None, timeout=10)
        rows = running.api("GET", f"/v2/zones/{ids['changed.maint.']}/status")["targets"]
        away_id = outage.target_id(running, away)
        (away_row,) = [r for r in rows if r["target_id"] == away_id]
        assert (away_row["status"], away_row["current"]) == ("ERROR", False), "recorded behind"

        away.start()
        running.cli("pool", "target", "maintenance", away_id, "off")
        outage.wait_served(binds, "changed.maint.", changed, timeout=60)
        outage.wait_served(binds, "created.maint.", created["serial"], timeout=60)
        outage.wait_served(binds, "deleted.maint.", None, timeout=60)

        def counted_again() -> bool:
            targets = running.api("GET", "/v2/targets")["targets"]
            return {t["target_id"]: t["counted"] for t in targets}[away_id] is True

        eventually(counted_again, timeout=60, what="the target counted again once caught up")
    finally:
        running.close()
