"""A real browser for the dashboard's tests: Playwright driving Debian's chromium.

The browser is the distribution's (``make sysdeps`` installs ``chromium``),
never one Playwright downloads; a machine without it fails the tests that
need it, as a missing nameserver does.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

# The sizes the dashboard is read at: a laptop, and a phone.
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Playwright's waits, in milliseconds: generous, for a loaded machine.
WAIT_MS = 60_000


@pytest.fixture
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed: run `make sysdeps` (Debian's chromium package)")
    with sync_playwright() as playwright:
        # Chromium's sandbox refuses to run as root (a CI container).
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        launched = playwright.chromium.launch(executable_path=chromium, headless=True, args=args)
        try:
            yield launched
        finally:
            launched.close()


def sign_in(page: Page, url: str, project: str, role: str, *, all_projects: bool = False) -> None:
    """Open the dashboard from the API's root, as a browser does, and sign in (noauth)."""
    page.goto(f"{url}/")
    page.wait_for_url("**/dashboard/login**")
    page.get_by_label("Project", exact=True).fill(project)
    page.get_by_label("Role").select_option(role)
    if all_projects:
        page.get_by_label("See all projects (admin)").check()
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/dashboard/?$"))
    wait_live(page)


def wait_live(page: Page) -> None:
    """Until the page follows the event stream."""
    page.wait_for_selector('#live-status[data-live="true"]', timeout=WAIT_MS)
