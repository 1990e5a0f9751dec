"""The dashboard live: how soon a task's new state colours its node in a browser.

Real PostgreSQL (events by LISTEN/NOTIFY), ZooKeeper, BIND9 targets behind
``zoneflow mdns``, with ``zoneflow conductor``, ``zoneflow api`` and
``zoneflow inspector`` as processes (tests/functional/test_dashboard_browser.py's
deployment), and Debian's chromium driven by Playwright. Each round creates
a zone with the conductor held stopped (SIGSTOP), opens its job's page, lets
the conductor go (SIGCONT) and waits until every task is green. For each
re-colouring the page's script keeps the event's ``changed_at`` (stamped by
the conductor's process in the engine's notification of the state change,
before the event is written) and the browser's clock when the node changed
colour; the figure is the difference (one machine, one clock).

    python bench/dashboard_live.py [--rounds 20] [--targets 2] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import shutil
import signal
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from bench import report  # noqa: E402
from tests.functional import test_dashboard_browser as browser_tests  # noqa: E402
from tests.functional.browser import DESKTOP, WAIT_MS, sign_in, wait_live  # noqa: E402
from tests.functional.fixtures.bind9 import Bind9Server  # noqa: E402
from tests.functional.fixtures.postgres import PostgresServer  # noqa: E402
from tests.functional.fixtures.zookeeper import ZooKeeperServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--targets", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is not installed: run `make sysdeps`")
    with (
        tempfile.TemporaryDirectory(prefix="zoneflow-dashboard-") as tmp,
        PostgresServer() as postgres,
        ZooKeeperServer() as zookeeper,
        sync_playwright() as playwright,
    ):
        binds = [Bind9Server() for _ in range(args.targets)]
        browser = playwright.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=["--no-sandbox"] if os.geteuid() == 0 else [],
        )
        try:
            for bind in binds:
                bind.start()
            running = browser_tests._deployment(
                pathlib.Path(tmp), postgres.create_database("dashboard"), zookeeper.hosts, binds
            )
            try:
                samples = run(args, running, browser.new_page(viewport=DESKTOP))
            finally:
                running.kill("conductor", signal.SIGCONT)
                running.close()
        finally:
            browser.close()
            for bind in binds:
                bind.close()
    table = report.latency_table([("task state changed in the engine → node re-coloured", samples)])
    print(table)
    if not args.no_write:
        report.write_section(
            "dashboard-live",
            "Dashboard: a task's state change to its colour in the page",
            f"{args.rounds} create-zone jobs on {args.targets} BIND9 targets, every "
            "re-colouring of the job's graph timed from the moment the conductor's "
            "engine changed the task's state (its notification, stamped in the task "
            "event as `changed_at`) to the browser's clock as the node changes colour: "
            "the event written to PostgreSQL, LISTEN/NOTIFY to `zoneflow api`, "
            f"Server-Sent Events to chromium (`bench/dashboard_live.py`).\n\n{table}",
        )
    return 0


def run(args: argparse.Namespace, running: object, page: object) -> list[float]:
    from playwright.sync_api import Page

    from tests.functional.deployment import Deployment

    assert isinstance(running, Deployment) and isinstance(page, Page)
    sign_in(page, running.api_url, "bench", "member")
    running.api("PATCH", "/v2/quotas/bench", {"zones": args.rounds + 10})
    samples: list[float] = []
    for round_ in range(args.rounds):
        running.kill("conductor", signal.SIGSTOP)
        try:
            browser_tests.create_zone_in_page(page, running.api_url, f"r{round_}.live.example.")
            browser_tests.open_its_job(page)
            wait_live(page)
        finally:
            running.kill("conductor", signal.SIGCONT)
        page.wait_for_selector('#job-state[data-state="SUCCESS"]', timeout=WAIT_MS)
        paints = page.evaluate("() => window.zoneflowPaints")
        if not paints:
            raise SystemExit(f"round {round_}: the graph turned green with no task event")
        for paint in paints:
            changed = datetime.datetime.fromisoformat(paint["changed"])
            if changed.tzinfo is None:
                changed = changed.replace(tzinfo=datetime.UTC)
            samples.append(paint["painted"] / 1000 - changed.timestamp())
        print(f"round {round_}: {len(paints)} re-colourings")
    return samples


if __name__ == "__main__":
    sys.exit(main())
