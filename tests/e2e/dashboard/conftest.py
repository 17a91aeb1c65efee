"""The dashboard tests' browser: one headless Chromium per test module, and a fresh tab on the session stack."""

from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright

from browser_helpers import ARGS, CHROMIUM, Tab


@pytest.fixture(scope="module")
def chromium():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def tab(chromium, stack):
    context = chromium.new_context(base_url=stack.base_url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    tab = Tab(context.new_page(), stack.base_url)
    yield tab
    context.close()
