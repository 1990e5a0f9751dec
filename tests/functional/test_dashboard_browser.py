"""The dashboard in a real browser (chromium through Playwright) against a running
zoneflow: PostgreSQL, ZooKeeper, ``zoneflow api``, mdns, a conductor and the
inspector, each a process of its own, and a pool of BIND9 targets.

What the page shows is checked against what the nameservers answer.
"""

from __future__ import annotations

import pathlib
import re
import signal
import time

from playwright.sync_api import Browser, Page

from tests.functional import outage
from tests.functional.browser import DESKTOP, PHONE, WAIT_MS, browser, sign_in, wait_live
from tests.functional.conftest import Bind9Factory
from tests.functional.deployment import Deployment, soa_serial
from tests.functional.fixtures.bind9 import Bind9Server
from tests.functional.fixtures.zookeeper import ZooKeeperServer
from tests.support import eventually

__all__ = ["browser"]

EMAIL = "hostmaster@browser.example"
# Every atom of the job's drawing (the legend is a node too, named so).
ATOMS_JS = """
() => [...document.querySelectorAll('#graph g.node')]
  .filter(n => n.querySelector('title').textContent !== 'legend')
"""


def _deployment(
    tmp_path: pathlib.Path, database: str, hosts: str, binds: list[Bind9Server]
) -> Deployment:
    # A conductor held stopped a while keeps its ZooKeeper session (and its claims).
    return outage.deployment(
        tmp_path, database=database, zookeeper_hosts=hosts, binds=binds, session_timeout=30.0
    )


def create_zone_in_page(page: Page, url: str, name: str) -> str:
    """Fill the zones page's form; the zone's id, from the page it lands on."""
    page.goto(f"{url}/dashboard/zones")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_role("button", name="Create zone").click()
    page.wait_for_url(re.compile(r".*/dashboard/zones/[0-9a-f-]{36}$"))
    assert page.locator("#zone-h").inner_text() == name
    return page.url.rsplit("/", 1)[1]


def open_its_job(page: Page) -> None:
    """From a zone's page, its job once the job is posted (the page reloaded until then)."""

    def listed() -> bool:
        page.reload()
        return page.locator("#history a").count() >= 1

    # Each try reloads the page (a render in the API and in the browser): not too often.
    eventually(listed, timeout=60, interval=0.25, what="the zone's job in its history")
    page.locator("#history a").first.click()
    page.wait_for_url(re.compile(r".*/dashboard/jobs/[0-9a-f-]{36}$"))
    page.wait_for_selector('#graph[data-ready="true"]', timeout=WAIT_MS)
    wait_live(page)


def atom_states(page: Page) -> list[str | None]:
    return page.evaluate(f"({ATOMS_JS})().map(n => n.dataset.state || null)")


def matrix(page: Page) -> dict[str, tuple[str, str]]:
    """Each target's row of a zone's matrix: (serial served, whether it is current)."""
    rows = page.locator("#matrix tbody tr")
    return {
        rows.nth(i).get_attribute("data-target") or "": (
            rows.nth(i).get_attribute("data-serial") or "",
            rows.nth(i).get_attribute("data-current") or "",
        )
        for i in range(rows.count())
    }


def test_a_zone_created_in_the_page_turns_its_graph_green_then_the_matrix_shows_bind9_serving_it(
    tmp_path: pathlib.Path,
    postgres_database: str,
    zookeeper: ZooKeeperServer,
    bind9_factory: Bind9Factory,
    browser: Browser,
) -> None:
    binds = bind9_factory(2)
    running = _deployment(tmp_path, postgres_database, zookeeper.hosts, binds)
    page = browser.new_page(viewport=DESKTOP)
    held = False
    try:
        sign_in(page, running.api_url, "alice", "member")
        # The job waits on the board until the conductor runs again: the page is open
        # before any task has run, so green can only come from the live stream.
        running.kill("conductor", signal.SIGSTOP)
        held = True
        zone_id = create_zone_in_page(page, running.api_url, "browser.example.")
        open_its_job(page)
        before = atom_states(page)
        assert before and set(before) <= {None, "PENDING"}, before

        running.kill("conductor", signal.SIGCONT)
        held = False
        page.wait_for_function(
            f"() => {{ const atoms = ({ATOMS_JS})(); return atoms.length > 0 && "
            "atoms.every(n => n.dataset.state === 'SUCCESS'); }",
            timeout=WAIT_MS,
        )
        fills = page.evaluate(
            f"({ATOMS_JS})().map(n => n.querySelector('path, polygon').getAttribute('fill'))"
        )
        assert set(fills) == {"#a1d99b"}, fills
        page.wait_for_selector('#job-state[data-state="SUCCESS"]', timeout=WAIT_MS)
        # The table says what the graph says, however its redraws and the events interleaved.
        rows = page.locator("#tasks tr[data-task] .state").all_inner_texts()
        assert rows and set(rows) == {"SUCCESS"}, rows

        page.get_by_role("link", name="browser.example.").first.click()
        page.wait_for_url(f"**/dashboard/zones/{zone_id}")
        wait_live(page)
        serial = page.locator("#zone-serial").inner_text()
        ids = {outage.target_id(running, bind): bind for bind in binds}
        page.wait_for_function(
            "() => { const rows = [...document.querySelectorAll('#matrix tbody tr')]; "
            "return rows.length > 0 && rows.every(r => r.dataset.current === 'true'); }",
            timeout=WAIT_MS,
        )
        shown = matrix(page)
        assert set(shown) == set(ids)
        for target_id, bind in ids.items():
            served = soa_serial("browser.example.", bind.host, bind.port)
            assert shown[target_id] == (str(served), "true") == (serial, "true")
        assert page.locator("#zone-status").inner_text() == "ACTIVE"

        # A job's link pressed while an event redraws the history still opens the job
        # when released: a redraw between the press and the release swallowed the click.
        link = page.locator("#history a").first
        href = link.get_attribute("href")
        link.hover()
        page.mouse.down()
        running.api(
            "POST",
            f"/v2/zones/{zone_id}/recordsets",
            {"name": "www.browser.example.", "type": "A", "records": ["192.0.2.1"]},
            all_projects=True,
        )
        page.wait_for_selector('[data-part="live_history"][data-held="true"]', timeout=WAIT_MS)
        page.mouse.up()
        page.wait_for_url(f"**{href}")
    finally:
        if held:
            running.kill("conductor", signal.SIGCONT)
        page.close()
        running.close()


def test_a_killed_bind9_shows_down_with_an_alarm_a_failed_change_and_catches_up_when_back(
    tmp_path: pathlib.Path,
    postgres_database: str,
    zookeeper: ZooKeeperServer,
    bind9_factory: Bind9Factory,
    browser: Browser,
) -> None:
    binds = bind9_factory(2)
    alive, dead = binds
    running = _deployment(tmp_path, postgres_database, zookeeper.hosts, binds)
    overview = browser.new_page(viewport=DESKTOP)
    page = browser.new_page(viewport=DESKTOP)
    try:
        sign_in(overview, running.api_url, "ops", "admin", all_projects=True)
        dead_id = outage.target_id(running, dead)
        health = overview.locator(f'tr[data-target="{dead_id}"] [data-health]')
        assert health.inner_text() == "UP"

        killed_at = time.monotonic()
        dead.kill()
        overview.wait_for_selector(f'.alarm[data-target="{dead_id}"]', timeout=WAIT_MS)
        seen_after = time.monotonic() - killed_at
        print(f"alarm on the overview {seen_after:.3f} s after the kill")
        assert seen_after <= 2.0
        assert health.inner_text() == "DOWN"

        # A change while it is down fails under the pool's 100%: its job is reverted.
        sign_in(page, running.api_url, "alice", "member")
        zone_id = create_zone_in_page(page, running.api_url, "during.example.")
        open_its_job(page)
        page.wait_for_selector('#job-state[data-state="REVERTED"]', timeout=WAIT_MS)
        reason = page.locator("#job-reason").inner_text()
        assert "below the pool's threshold of 100%" in reason, reason
        assert "REVERTED" in atom_states(page)

        dead.start()
        overview.wait_for_selector(
            f'tr[data-target="{dead_id}"] [data-health="UP"]', timeout=WAIT_MS
        )
        page.goto(f"{running.api_url}/dashboard/zones/{zone_id}")
        page.wait_for_function(
            "() => { const rows = [...document.querySelectorAll('#matrix tbody tr')]; "
            "return rows.length === 2 && rows.every(r => r.dataset.current === 'true'); }",
            timeout=WAIT_MS,
        )
        serial = int(page.locator("#zone-serial").inner_text())
        outage.wait_served(binds, "during.example.", serial, timeout=60)
        assert alive.port != dead.port
    finally:
        overview.close()
        page.close()
        running.close()


# Every control has a label (its own, aria-label, or a <label> around or for it).
UNLABELLED_JS = """
() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
  .filter(c => !(c.labels && c.labels.length) && !c.getAttribute('aria-label')
               && !(c.tagName === 'BUTTON' && c.textContent.trim()))
  .map(c => c.outerHTML)
"""
# The page itself never scrolls sideways (a wide table scrolls in its section).
OVERFLOW_JS = "() => document.documentElement.scrollWidth - window.innerWidth"


def test_every_page_is_labelled_keyboard_reachable_and_fits_a_phone(
    tmp_path: pathlib.Path,
    postgres_database: str,
    zookeeper: ZooKeeperServer,
    bind9_factory: Bind9Factory,
    browser: Browser,
) -> None:
    binds = bind9_factory(1)
    running = _deployment(tmp_path, postgres_database, zookeeper.hosts, binds)
    page = browser.new_page(viewport=DESKTOP)
    try:
        sign_in(page, running.api_url, "ops", "admin")
        zone_id = create_zone_in_page(page, running.api_url, "phone.example.")
        open_its_job(page)
        target_id = outage.target_id(running, binds[0])
        pages = [
            "/dashboard/",
            "/dashboard/zones",
            f"/dashboard/zones/{zone_id}",
            "/dashboard/jobs",
            page.url.split(running.api_url, 1)[1],
            f"/dashboard/targets/{target_id}",
            "/dashboard/login",
        ]
        for size in (DESKTOP, PHONE):
            page.set_viewport_size(size)
            for path in pages:
                page.goto(f"{running.api_url}{path}")
                assert page.evaluate(UNLABELLED_JS) == [], path
                assert page.evaluate(OVERFLOW_JS) <= 0, f"{path} scrolls sideways at {size}"
        # By keyboard alone: from the zones page, Tab reaches the create form and
        # Enter submits it.
        page.set_viewport_size(DESKTOP)
        page.goto(f"{running.api_url}/dashboard/zones")
        for _ in range(40):
            page.keyboard.press("Tab")
            if page.evaluate("() => document.activeElement.id") == "zone-name":
                break
        else:
            raise AssertionError("Tab never reached the zone name field")
        page.keyboard.type("keys.example.")
        page.keyboard.press("Tab")
        page.keyboard.type(EMAIL)
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r".*/dashboard/zones/[0-9a-f-]{36}$"))
        assert page.locator("#zone-h").inner_text() == "keys.example."
    finally:
        page.close()
        running.close()


def test_a_user_of_one_project_never_sees_another_projects_zones_jobs_or_events(
    tmp_path: pathlib.Path,
    postgres_database: str,
    zookeeper: ZooKeeperServer,
    bind9_factory: Bind9Factory,
    browser: Browser,
) -> None:
    binds = bind9_factory(1)
    running = _deployment(tmp_path, postgres_database, zookeeper.hosts, binds)
    alice = browser.new_context(viewport=DESKTOP).new_page()
    bob = browser.new_context(viewport=DESKTOP).new_page()
    try:
        sign_in(bob, running.api_url, "bob", "member")
        bob.goto(f"{running.api_url}/dashboard/jobs")
        wait_live(bob)
        sign_in(alice, running.api_url, "alice", "member")
        zone_id = create_zone_in_page(alice, running.api_url, "alices.example.")
        open_its_job(alice)
        alice.wait_for_selector('#job-state[data-state="SUCCESS"]', timeout=WAIT_MS)
        job_url = alice.url

        # bob's live job list heard nothing of it, and his stream holds none of it.
        assert zone_id not in bob.content() and "alices.example." not in bob.content()
        kept = bob.evaluate(
            "async () => (await fetch('/dashboard/events?follow=false&last_event_id=0')).text()"
        )
        assert zone_id not in kept
        bob.goto(f"{running.api_url}/dashboard/zones?q=alices")
        assert "alices.example." not in bob.content()
        for url in (job_url, f"{running.api_url}/dashboard/zones/{zone_id}"):
            answered = bob.goto(url)
            assert answered is not None and answered.status == 404, url
            # The refusal names the id bob asked for, and nothing of alice's zone.
            assert "alices.example." not in bob.content()
    finally:
        alice.context.close()
        bob.context.close()
        running.close()


def test_a_page_whose_stream_dropped_resumes_and_shows_what_changed_meanwhile(
    tmp_path: pathlib.Path,
    postgres_database: str,
    zookeeper: ZooKeeperServer,
    bind9_factory: Bind9Factory,
    browser: Browser,
) -> None:
    binds = bind9_factory(1)
    running = _deployment(tmp_path, postgres_database, zookeeper.hosts, binds)
    page = browser.new_page(viewport=DESKTOP)
    try:
        sign_in(page, running.api_url, "ops", "admin", all_projects=True)
        page.goto(f"{running.api_url}/dashboard/zones")
        wait_live(page)
        page.evaluate("() => { window.notReloaded = true; }")

        # The API goes away with the stream; a zone is made meanwhile (by the CLI,
        # straight to the database), and the API comes back on the same address.
        running.kill("api")
        page.wait_for_selector('#live-status[data-live="false"]', timeout=WAIT_MS)
        running.cli("zone", "create", "meanwhile.example.", "--email", EMAIL)
        running.start_api()

        # EventSource reconnects by itself with Last-Event-ID: the zone arrives in
        # the same page, not reloaded.
        page.wait_for_selector("#zones >> text=meanwhile.example.", timeout=WAIT_MS)
        assert page.evaluate("() => window.notReloaded === true")
        wait_live(page)
    finally:
        page.close()
        running.close()
