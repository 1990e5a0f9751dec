"""Take the dashboard's screenshots in doc/images/: the overview, a zone, a running job.

An all-in-one zoneflow in this process (SQLite, zake, fake targets: no
server needed), a few zones made through the API, and Debian's chromium
driven by Playwright at 1280×800. The third target of the pool answers
slowly, so a job is caught running, its graph part green, part blue.

    .venv/bin/python scripts/dashboard-screenshots.py
"""

from __future__ import annotations

import os
import pathlib
import shutil
import sys
import tempfile
import time

import httpx
from playwright.sync_api import sync_playwright

from zoneflow import allinone, config
from zoneflow.central import pools

ROOT = pathlib.Path(__file__).resolve().parent.parent
IMAGES = ROOT / "doc" / "images"
ADMIN = {"X-Auth-Project-ID": "demo", "X-Roles": "admin"}
POOL = """
- name: default
  ns_records: [{hostname: ns1.example.org., priority: 1}]
  targets:
    - {type: fake, description: "ns1 (fake)"}
    - {type: fake, description: "ns2 (fake)"}
    - {type: fake, description: "ns3 (fake, slow)", options: {delay: 4}}
"""


def main() -> int:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is not installed: run `make sysdeps`")
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="zoneflow-screens-") as scratch:
        conf = pathlib.Path(scratch) / "zoneflow.conf"
        conf.write_text(
            f"[database]\nconnection = sqlite:///{scratch}/zoneflow.sqlite\n"
            "[api]\nhost = 127.0.0.1\nport = 0\n[mdns]\nhost = 127.0.0.1\nport = 0\n"
        )
        config.setup([str(conf)])
        services = allinone.AllInOne()
        pools.store(pools.parse(POOL))
        services.start()
        assert services.api is not None
        url = services.api.url
        try:
            shoot(url, chromium)
        finally:
            services.stop()
    print(f"screenshots written to {IMAGES.relative_to(ROOT)}/")
    return 0


def shoot(url: str, chromium: str) -> None:
    api = httpx.Client(base_url=url, headers=ADMIN, timeout=30)
    made = [
        api.post("/v2/zones", json={"name": name, "email": "hostmaster@example.com"}).json()
        for name in ("example.com.", "example.net.", "example.org.")
    ]
    api.post(
        f"/v2/zones/{made[0]['id']}/recordsets",
        json={"name": "www.example.com.", "type": "A", "records": ["192.0.2.10"]},
    )
    wait(lambda: all(api.get(f"/v2/zones/{z['id']}").json()["status"] == "ACTIVE" for z in made))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=["--no-sandbox"] if os.geteuid() == 0 else [],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{url}/dashboard/login")
        page.get_by_label("Project", exact=True).fill("demo")
        page.get_by_label("Role").select_option("admin")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector('#live-status[data-live="true"]')
        page.screenshot(path=str(IMAGES / "dashboard-overview.png"), full_page=True)

        page.goto(f"{url}/dashboard/zones/{made[0]['id']}")
        page.wait_for_selector('#live-status[data-live="true"]')
        page.screenshot(path=str(IMAGES / "dashboard-zone.png"), full_page=True)

        running = api.post(
            f"/v2/zones/{made[1]['id']}/recordsets",
            json={"name": "mail.example.net.", "type": "A", "records": ["192.0.2.25"]},
        )
        assert running.status_code == 202, running.text
        jobs = wait(
            lambda: [
                j
                for j in api.get(f"/v2/jobs?zone_id={made[1]['id']}").json()["jobs"]
                if j["state"] == "RUNNING"
            ]
        )
        page.goto(f"{url}/dashboard/jobs/{jobs[0]['id']}")
        page.wait_for_selector('#graph[data-ready="true"]')
        page.wait_for_selector('#graph g.node[data-state="SUCCESS"]')
        page.screenshot(path=str(IMAGES / "dashboard-job.png"), full_page=True)
        browser.close()


def wait(check, timeout: float = 60):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise SystemExit("the demo zoneflow did not get there in time")


if __name__ == "__main__":
    sys.exit(main())
