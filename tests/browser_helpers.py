"""Headless Chromium (Debian's ``chromium``) driven by Playwright, for the dashboard's browser tests: a tab that
collects what went wrong in it, sign-in, and the skip mark where no Chromium is installed (the browser and tab
fixtures are in tests/e2e/dashboard/conftest.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from conftest import API_TOKEN
from devtools.browser_page import CHROMIUM

# Each browser test module: pytestmark = needs_chromium
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"no Chromium at {CHROMIUM}: install Debian's chromium (apt-get install chromium) "
           "to run the browser tests; `make test` installs it when it runs as root with apt-get",
)


class Tab:
    """One page in a fresh browser context, with what went wrong in it collected."""

    def __init__(self, page: Page, base_url: str):
        self.page = page
        self.foreign: list[str] = []  # requests to another origin (a CDN would show up here)
        self.errors: list[str] = []   # script errors and console errors (CSP violations among them)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        # HTTP answers are the tests' own business (a refused sign-in is a 401 page).
        page.on("console", lambda msg: msg.type == "error" and not msg.text.startswith("Failed to load resource")
                and self.errors.append(msg.text))

        def route(request_route):
            if request_route.request.url.startswith(base_url + "/"):
                request_route.continue_()
            else:
                self.foreign.append(request_route.request.url)
                request_route.abort()

        page.route("**/*", route)

    def clean(self) -> None:
        assert self.foreign == []
        assert self.errors == []


def fill_sign_in(page: Page, token: str, goto: str = "/jobs") -> None:
    """Open ``goto``, be sent to the sign-in form, and send it with ``token``."""
    page.goto(goto)
    expect(page).to_have_url(re.compile(r"/signin\?next="))
    page.fill("#token", token)
    page.click("form button[type=submit]")


def sign_in(page: Page, token: str = API_TOKEN, goto: str = "/jobs") -> None:
    """Sign in through ``goto`` (the job list unless told): back on it, loaded, its stylesheet applied. A busy server
    can send a page's rows before its CSS, and a layout measured then is not the product's."""
    fill_sign_in(page, token, goto)
    expect(page).not_to_have_url(re.compile(r"/signin"))
    page.wait_for_load_state()


def row(page: Page, job_id: str):
    return page.locator(f'tr[data-job-id="{job_id}"]')


def loaded_width(image) -> int:
    """The decoded width of an <img>, once the browser has loaded it (0 while not)."""
    return image.evaluate("img => img.complete ? img.naturalWidth : 0")
