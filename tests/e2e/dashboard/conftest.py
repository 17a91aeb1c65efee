"""The dashboard tests' browsers: one headless Chromium per test module, and fresh tabs on the session stack; and
``requests`` signed in as a browser is, for the tests of what a browser relies on."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import sync_playwright

from browser_helpers import Tab
from devtools.browser_page import ARGS, CHROMIUM
from helpers import sign_in


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


# A browser without the asynchronous clipboard (an http:// page on another host than localhost has none).
NO_CLIPBOARD = "Object.defineProperty(Navigator.prototype, 'clipboard', {get: () => undefined, configurable: true});"


@pytest.fixture()
def open_tab(chromium, stack):
    """Opens tabs of a given window size (``clipboard``: whether the page may use the clipboard)."""
    contexts = []

    def open_at(width: int, height: int, *, clipboard: bool = True) -> Tab:
        context = chromium.new_context(base_url=stack.base_url, viewport={"width": width, "height": height})
        context.set_default_timeout(15_000)
        if clipboard:
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.base_url)
        else:
            context.add_init_script(NO_CLIPBOARD)
        contexts.append(context)
        return Tab(context.new_page(), stack.base_url)

    yield open_at
    for context in contexts:
        context.close()


@pytest.fixture()
def browser(stack) -> requests.Session:
    """An HTTP session signed in to the dashboard, its session cookie held as a browser holds it."""
    http, answer = sign_in(stack.base_url)
    assert answer.status_code == 303, answer.text
    return http
