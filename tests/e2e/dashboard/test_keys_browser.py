"""The dashboard's Keys page in headless Chromium against the session stack: create a key with the form (its
secret shown on that page only), see its limits, spend and jobs, follow its job list, see its credits on the
overview, and revoke it; both forms refuse a request without the session's CSRF token."""

from __future__ import annotations

import re

import requests
from playwright.sync_api import expect

from browser_helpers import needs_chromium, sign_in
from conftest import API

pytestmark = needs_chromium


def key_row(page, name: str):
    return page.locator("tr[data-key-id]", has=page.locator(f'[data-field="name"]:text-is("{name}")'))


def test_create_see_use_and_revoke_a_key(tab, api):
    page = tab.page
    sign_in(page, goto="/keys")
    expect(page).to_have_url(re.compile(r"/keys$"))
    expect(page.locator("h1")).to_have_text("App keys")

    page.fill('input[name="name"]', "browser-shop")
    page.fill('input[name="models"]', "flux-2-pro, flux-dev")
    page.fill('input[name="requests_per_minute"]', "30")
    page.fill('input[name="daily_credits"]', "25")
    page.click('#create button[type="submit"]')

    secret = page.locator("#secret").inner_text()
    assert re.fullmatch(r"fhk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", secret)
    row = key_row(page, "browser-shop")
    expect(row.locator('[data-field="state"]')).to_have_text("active")
    expect(row.locator('[data-field="requests_per_minute"]')).to_have_text("30/min")
    expect(row.locator('[data-field="spent_today"]')).to_have_text("0 / 25")
    key_id = row.get_attribute("data-key-id")

    # The secret works, and it is never shown again.
    app = API(api.base_url, token=secret)
    job = app.wait_for(app.submit("a shop's lighthouse")["id"], "stored")
    other = api.submit("[pending] an admin's job")
    page.goto("/keys")
    assert secret not in page.content()
    expect(page.locator("#secret")).to_have_count(0)
    expect(row.locator('[data-field="jobs_today"]')).to_have_text("1")
    expect(row.locator('[data-field="spent_today"]')).to_have_text(f"{job['cost']['credits']:g} / 25")

    # Its job list holds its jobs only.
    row.locator('a:text("Jobs")').click()
    expect(page).to_have_url(re.compile(rf"/jobs\?key_id={key_id}$"))
    expect(page.locator("#key-filter")).to_have_text("by key browser-shop")
    expect(page.locator(f'tr[data-job-id="{job["id"]}"]')).to_have_count(1)
    expect(page.locator(f'tr[data-job-id="{other["id"]}"]')).to_have_count(0)

    # The job's page names its key, and leads to the key's jobs.
    page.goto(f"/jobs/{job['id']}")
    expect(page.locator('#app-key a')).to_have_text("browser-shop")
    page.goto(f"/jobs/{other['id']}")
    expect(page.locator('#app-key')).to_have_text("an admin token")

    # The overview counts its credits by key.
    page.goto("/")
    credits = page.locator(f'#credits-by-key tr[data-key="{key_id}"]')
    expect(credits.locator("a")).to_have_text("browser-shop")
    expect(credits.locator('[data-field="credits"]')).to_have_text(f"{job['cost']['credits']:g}")

    page.goto("/keys")
    key_row(page, "browser-shop").locator('[data-action="revoke"]').click()
    key_row(page, "browser-shop").locator('[data-action="confirm-revoke"]').click()  # asked once more
    expect(page).to_have_url(re.compile(rf"/keys\?revoked={key_id}$"))
    expect(key_row(page, "browser-shop").locator('[data-field="state"]')).to_have_text("revoked")
    expect(key_row(page, "browser-shop").locator('[data-action="revoke"]')).to_have_count(0)
    assert app.get("/v1/jobs").status_code == 401
    tab.clean()


def test_a_bad_form_says_why_and_creates_nothing(tab, api):
    page = tab.page
    sign_in(page, goto="/keys")
    before = len(api.get("/v1/keys").json()["keys"])

    page.fill('input[name="name"]', "browser-bad")
    page.fill('input[name="weight"]', "heavy")
    page.click('#create button[type="submit"]')

    expect(page.locator("#error")).to_contain_text("'weight' is 'heavy': it must be a whole number")
    expect(page.locator('input[name="name"]')).to_have_value("browser-bad")
    assert len(api.get("/v1/keys").json()["keys"]) == before
    tab.clean()


def test_the_forms_need_the_sessions_csrf_token(tab, api):
    page = tab.page
    sign_in(page, goto="/keys")
    expect(page.locator("h1")).to_have_text("App keys")
    created = api.post("/v1/keys", json={"name": "browser-csrf"}).json()
    before = len(api.get("/v1/keys").json()["keys"])

    # The browser's own session cookie, without the form's token.
    forged_create = page.request.post("/keys", form={"name": "forged", "csrf_token": "not-the-token"})
    forged_revoke = page.request.post(f"/keys/{created['id']}/revoke", form={"csrf_token": ""})

    assert forged_create.status == 400 and forged_revoke.status == 400
    assert len(api.get("/v1/keys").json()["keys"]) == before
    assert api.get(f"/v1/keys/{created['id']}").json()["revoked_at"] is None
    # And without a session, nothing at all.
    signed_out = requests.post(api.base_url + f"/keys/{created['id']}/revoke", timeout=5, allow_redirects=False)
    assert signed_out.status_code == 401
    assert requests.get(api.base_url + "/keys", timeout=5, allow_redirects=False).status_code == 302
