"""The Keys page reads well in headless Chromium, at a phone's 390 × 844 and a desktop's 1400 × 900 and 1920 × 1080:
measured from the layout (``layout_checks``), not by eye.

Nothing covers a key's name (a "revoked" badge once did: "shop" read "hop"), nothing is cut short (the secret's
prefix and the key's id), every figure has its label in sight, a model name never breaks at its hyphen, the
dates read as on every other page (``2026-11-23 00:37:38``, not ISO), and Expires and Last used are shown at
every size. Every panel a row opens (Accounts…, Revoke…) floats over the page, in the window, without widening
it. Revoking asks first, naming the key, and says afterwards that it was done. ``make screenshots``
remakes docs/keys.png and docs/keys-narrow.png here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from browser_helpers import needs_chromium, sign_in
from conftest import API
from devtools.processes import ROOT
from key_helpers import make_key
from layout_checks import BROKEN, FAULTS, UNLABELLED, overflow

pytestmark = needs_chromium

SIZES = [pytest.param(390, 844, id="390x844"), pytest.param(1400, 900, id="1400x900"),
         pytest.param(1920, 1080, id="1920x1080")]
# Every panel a key's row opens: the button that opens it, the panel, and the button that acts on it.
PANELS = [pytest.param("places", "form:has([data-action='save-places'])", "save-places", id="accounts"),
          pytest.param("revoke", ".confirm", "confirm-revoke", id="revoke")]
MODELS = ["flux-2-pro", "flux-kontext-max"]
# What each figure of a key is called, where it is shown.
LABELS = {"models": "Models", "spent_today": "Spent today", "jobs_today": "Jobs today",
          "active_queued": "Active / queued", "requests_per_minute": "Rate", "max_active": "Max active",
          "weight": "Weight", "expires": "Expires", "last_used": "Last used"}
CLOCK = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")  # as the job pages write a time (dashboard_view.clock)


@pytest.fixture()
def shots(tmp_path) -> Path:
    """Where the screenshots go: docs/ under ``make screenshots`` (FLUXHOOK_SCREENSHOTS=1), else the test's folder."""
    return ROOT / "docs" if os.environ.get("FLUXHOOK_SCREENSHOTS") == "1" else tmp_path




@pytest.fixture(scope="module")
def keys(stack):
    """A key with every limit, used once and then revoked (a short name beside the badge), and one with a long name
    and none, never used: the same two at both sizes (and in the screenshots)."""
    api = API(stack.base_url)
    shop, shop_app = make_key(api, name="shop", models=MODELS, daily_credits=10, requests_per_minute=5, max_active=1,
                              weight=2, expires_at="2027-01-01T00:00:00Z")
    shop_app.wait_for(shop_app.submit("a shop's sign, hand-painted")["id"], "stored")
    assert api.delete(f"/v1/keys/{shop['id']}").status_code == 204
    newsletter, _ = make_key(api, name="newsletter-generator-prod")
    return {"shop": shop, "newsletter": newsletter}


def key_row(key: dict) -> str:
    return f'tr[data-key-id="{key["id"]}"]'


@pytest.mark.parametrize("width, height", SIZES)
def test_the_keys_page_reads_well(open_tab, keys, width, height, shots):
    tab = open_tab(width, height)
    page = tab.page
    sign_in(page, goto="/keys")
    expect(page.locator("h1")).to_have_text("App keys")
    page.wait_for_load_state()  # the stylesheet applied: what is measured is the page as shown
    shop, newsletter = key_row(keys["shop"]), key_row(keys["newsletter"])
    expect(page.locator(f'{shop} [data-field="state"]')).to_have_text("revoked")

    # Nothing covered, cut, spilling over, too small or off the window, in any key's row.
    faults = page.evaluate(FAULTS, ["tr[data-key-id]", 10])
    assert not faults, "\n".join(faults)
    scroll, client = overflow(page)
    assert scroll <= client, f"the Keys page is {scroll} px wide in a {client} px window"
    # The name whole, beside its badge: "shop", not "hop".
    for row, name in ((shop, "shop"), (newsletter, "newsletter-generator-prod")):
        expect(page.locator(f'{row} [data-field="name"]')).to_have_text(name)
        expect(page.locator(f'{row} [data-field="name"]')).to_be_visible()
    # The prefix and the id in full.
    expect(page.locator(shop)).to_contain_text(f"{keys['shop']['prefix']}…")
    expect(page.locator(shop)).to_contain_text(keys["shop"]["id"])

    # Every figure labelled where it is shown, each model name on one line.
    assert page.evaluate(UNLABELLED, [shop, LABELS]) == []
    assert page.evaluate(BROKEN, [f'{shop} [data-field="models"]', MODELS]) == []
    expect(page.locator(f'{shop} [data-field="models"]')).to_have_text(", ".join(MODELS))
    for field, want in (("spent_today", re.compile(r"^\d+(\.\d+)? / 10$")), ("requests_per_minute", "5/min"),
                        ("max_active", "1"), ("weight", "2")):
        expect(page.locator(f'{shop} [data-field="{field}"]')).to_have_text(want)

    # Dates as every other page writes them, shown at both sizes.
    expect(page.locator(f'{shop} [data-field="expires"]')).to_have_text("2027-01-01 00:00:00")
    expect(page.locator(f'{shop} [data-field="last_used"]')).to_have_text(CLOCK)
    expect(page.locator(f'{newsletter} [data-field="expires"]')).to_have_text("never")
    expect(page.locator(f'{newsletter} [data-field="last_used"]')).to_have_text("never")

    if width <= 1400:  # docs/ shows the two sizes people see most
        page.screenshot(path=str(shots / ("keys-narrow.png" if width < 640 else "keys.png")), full_page=width < 640)
    tab.clean()


def _keys_page(open_tab, width: int, height: int, row: str):
    """A tab of the given size on the Keys page, signed in, with the key of ``row`` shown and the stylesheet applied."""
    tab = open_tab(width, height)
    page = tab.page
    sign_in(page, goto="/keys")
    expect(page.locator(f'{row} [data-field="state"]')).to_have_text("active")
    page.wait_for_load_state()  # the stylesheet applied: what is measured is the page as shown
    return tab, page


@pytest.mark.parametrize("opens, panel, acts", PANELS)
@pytest.mark.parametrize("width, height", SIZES)
def test_every_panel_of_a_key_opens_in_the_window_without_widening_the_page(open_tab, api, width, height, opens,
                                                                             panel, acts, tmp_path):
    key, _ = make_key(api, name="panel-bot")
    row = key_row(key)
    tab, page = _keys_page(open_tab, width, height, row)
    table = page.locator("table.keylist").bounding_box()

    page.locator(f'{row} [data-action="{opens}"]').click()
    shown = page.locator(f"{row} {panel}")
    expect(shown).to_be_visible()
    # The page is no wider than the window, and the table no wider than it was: the panel floats, or (a card per
    # key in a narrow window) opens below its button.
    scroll, client = overflow(page)
    assert scroll <= client, f"with {opens} open the Keys page is {scroll} px wide in a {client} px window"
    assert page.locator("table.keylist").bounding_box()["width"] <= table["width"] + 1
    # The panel and the button that acts on it are in the window, and nothing in the row is covered or cut.
    button = shown.locator(f'[data-action="{acts}"]')
    button.scroll_into_view_if_needed()
    for box in (shown.bounding_box(), button.bounding_box()):
        assert box["x"] >= 0 and box["x"] + box["width"] <= client, box
    faults = page.evaluate(FAULTS, [row, 10])
    assert not faults, "\n".join(faults)
    page.screenshot(path=str(tmp_path / f"{opens}-{width}.png"))
    if opens == "places":  # its Save is within reach and does what it says
        shown.locator('input[name="accounts"]').fill("default")
        button.click()
        expect(page).to_have_url(re.compile(r"/keys$"))
        assert api.get(f"/v1/keys/{key['id']}").json()["accounts"] == ["default"]
    tab.clean()


@pytest.mark.parametrize("width, height", SIZES)
def test_revoking_asks_first_naming_the_key_and_says_it_was_done(open_tab, api, width, height, tmp_path):
    key, app = make_key(api, name="checkout-bot")
    other, _ = make_key(api, name="still-active")
    row = key_row(key)
    tab, page = _keys_page(open_tab, width, height, row)

    # The first click only asks, naming the key; nothing is revoked yet.
    page.locator(f'{row} [data-action="revoke"]').click()
    assert api.get(f"/v1/keys/{key['id']}").json()["revoked_at"] is None
    question = page.locator(f"{row} .confirm")
    expect(question).to_be_visible()
    expect(question).to_contain_text("Revoke checkout-bot?")
    expect(question).to_contain_text("cannot be undone")
    confirm = question.locator('[data-action="confirm-revoke"]')
    expect(confirm).to_have_text("Revoke checkout-bot")
    assert app.get("/v1/jobs").status_code == 200
    # The question is in the window and readable, covering nothing in its row.
    faults = page.evaluate(FAULTS, [row, 10])
    assert not faults, "\n".join(faults)
    box = question.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
    assert overflow(page)[0] <= overflow(page)[1]
    page.screenshot(path=str(tmp_path / "revoke.png"))

    # The second revokes it, and the Keys page says so.
    confirm.click()
    expect(page).to_have_url(re.compile(rf"/keys\?revoked={key['id']}$"))
    notice = page.locator("#revoked")
    expect(notice).to_be_visible()
    expect(notice).to_have_attribute("role", "status")
    expect(notice).to_contain_text("checkout-bot")
    expect(notice).to_contain_text("revoked")
    expect(page.locator(f'{row} [data-field="state"]')).to_have_text("revoked")
    expect(page.locator(f'{row} [data-action="revoke"]')).to_have_count(0)
    assert api.get(f"/v1/keys/{key['id']}").json()["revoked_at"] is not None
    page.screenshot(path=str(tmp_path / "revoked.png"))

    # A made-up link says nothing: the key it names is not revoked, or is no key.
    for made_up in (other["id"], "not-a-key"):
        page.goto(f"/keys?revoked={made_up}")
        expect(page.locator("h1")).to_have_text("App keys")
        expect(page.locator("#revoked")).to_have_count(0)
    tab.clean()
