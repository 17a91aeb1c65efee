"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

Sign-in (onto the overview), the list, the status filter, a job page, and a job turning ``stored`` while its page is
open, against the session stack. Every request the browser makes to another origin is blocked
and counted: the dashboard must work on a machine without internet (no CDN). Skipped, with the
reason, only where no Chromium is installed (``make test`` installs it where it can).
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from browser_helpers import fill_sign_in, loaded_width, needs_chromium, row, sign_in
from conftest import API_TOKEN

pytestmark = needs_chromium


def test_sign_in_list_filter_and_job_page(tab, api):
    page = tab.page
    stored = api.wait_for(api.submit("a lighthouse at dawn", metadata={"user": "ann"})["id"], "stored")
    pending = api.submit("[pending] still at BFL")

    fill_sign_in(page, token="wrong-token-123", goto="/")
    expect(page.get_by_role("alert")).to_contain_text("not one of this service's API tokens")
    page.fill("#token", API_TOKEN)
    page.click("form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("h1")).to_have_text("Overview")  # the first page after sign-in
    page.click('nav.sections a:text("Jobs")')
    expect(page).to_have_url(re.compile(r"/jobs$"))

    # The list, newest first: the pending job above the stored one, each with its status.
    expect(row(page, pending["id"]).locator('[data-field="status"]')).to_have_text("submitted")
    expect(row(page, stored["id"]).locator('[data-field="status"]')).to_have_text("stored")
    ids = page.locator("#rows tr").evaluate_all("rows => rows.map(r => r.dataset.jobId)")
    assert ids.index(pending["id"]) < ids.index(stored["id"])
    expect(row(page, stored["id"]).locator('[data-field="source"]')).to_have_text("webhook")
    expect(row(page, stored["id"]).locator('[data-field="bfl_done"]')).to_have_text(re.compile(r"^\+\d"))
    expect(row(page, stored["id"]).locator('[data-field="stored"]')).to_have_text(re.compile(r"^\+\d"))
    thumbnail = row(page, stored["id"]).locator(".thumb img")
    expect(thumbnail).to_have_attribute("src", f"/jobs/{stored['id']}/thumbnail")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
    assert loaded_width(thumbnail) == stored["image"]["width"]  # the simulator's images are smaller than 256 px

    # Filter by status.
    page.click('.filters a[data-filter="stored"]')
    expect(page).to_have_url(re.compile(r"/jobs\?status=stored$"))
    expect(page.locator('.filters a[aria-current="page"]')).to_contain_text("stored")
    expect(row(page, stored["id"])).to_be_visible()
    expect(row(page, pending["id"])).to_have_count(0)
    statuses = page.locator('#rows [data-field="status"]').all_text_contents()
    assert statuses and set(statuses) == {"stored"}

    # The job page: the full image, its metadata and its timeline.
    row(page, stored["id"]).locator('.job a').click()
    expect(page).to_have_url(re.compile(f"/jobs/{stored['id']}$"))
    expect(page.locator('h1 [data-field="status"]')).to_have_text("stored")
    image = page.locator("#picture img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert loaded_width(image) == stored["image"]["width"]
    expect(page.locator(".metadata")).to_contain_text('"user": "ann"')
    expect(page.locator('[data-field="bfl_id"]')).to_have_text(stored["bfl_id"])
    timeline = page.locator("#timeline li")
    expect(timeline.first).to_contain_text("Job created")
    expect(page.locator("#timeline")).to_contain_text("Sent to BFL")
    expect(page.locator("#timeline")).to_contain_text("BFL called back the result is ready")
    expect(page.locator("#timeline")).to_contain_text("Job stored downloaded and stored in")
    expect(page.locator("#error")).to_be_hidden()

    # Sign out (a POST carrying the session's CSRF token): the pages are closed again.
    page.click("form.signout button")
    expect(page).to_have_url(re.compile(r"/signin$"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/signin\?next="))
    tab.clean()


def test_a_pending_job_turns_stored_while_the_list_is_open(tab, api, sim, tmp_path):
    page = tab.page
    for prompt in ("a red fox", "a lighthouse at dawn", "a bowl of lemons"):
        api.wait_for(api.submit(prompt, metadata={"prompt": prompt})["id"], "stored")
    failed = api.submit("[error] refused by BFL")
    job = api.submit("[pending] finishing while you watch")
    api.wait_for(failed["id"], "failed")
    sign_in(page)
    status = row(page, job["id"]).locator('[data-field="status"]')
    expect(status).to_have_text("submitted")
    expect(row(page, job["id"]).locator(".thumb img")).to_have_count(0)
    page.evaluate("window.notReloaded = true")

    sim.complete(job["bfl_id"])

    expect(status).to_have_text("stored", timeout=15_000)
    expect(status).to_have_class("status status-stored")
    thumbnail = row(page, job["id"]).locator(".thumb img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
    expect(row(page, job["id"]).locator('[data-field="stored"]')).to_have_text(re.compile(r"^\+\d"))
    expect(page.locator('[data-count="stored"]')).to_have_text(re.compile(r"^[1-9]\d*$"))
    assert page.evaluate("window.notReloaded") is True  # updated in place, not by reloading
    expect(page.locator("#live")).to_have_text("live")

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000  # docs/dashboard.png is test_dashboard_fit's, at 1280 px
    tab.clean()


def test_a_pending_job_turns_stored_while_its_page_is_open(tab, api, sim, tmp_path):
    page = tab.page
    job = api.submit("[pending] watched on its own page", metadata={"order": 42})
    sign_in(page, goto=f"/jobs/{job['id']}")
    expect(page).to_have_url(re.compile(f"/jobs/{job['id']}$"))  # back where sign-in was asked for
    status = page.locator('h1 [data-field="status"]')
    expect(status).to_have_text("submitted")
    expect(page.locator("#picture .noimage")).to_have_text("No image yet")
    page.evaluate("window.notReloaded = true")

    sim.complete(job["bfl_id"])

    expect(status).to_have_text("stored", timeout=15_000)
    image = page.locator("#picture img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    expect(page.locator('[data-field="source"]')).to_have_text("webhook")
    expect(page.locator("#timeline")).to_contain_text("BFL called back the result is ready")
    expect(page.locator("#timeline li").last).to_contain_text("Job stored downloaded and stored in")
    expect(page.locator("#timeline")).not_to_contain_text("Downloaded and stored")  # one stored moment
    expect(page.locator("#live")).to_have_text("final")
    # The badge says what "final" means, beside it and in its tooltip; the facts time each step in words.
    expect(page.locator("#live-why")).to_have_text("will not change")
    expect(page.locator("#livebox")).to_have_attribute("title", re.compile(r"^Final: what this page shows has ended"))
    expect(page.locator('[data-field="bfl_took"]')).to_have_text(re.compile(r" after it was sent$"))
    expect(page.locator('[data-field="ended_took"]')).to_have_text(re.compile(r" after BFL finished$"))
    expect(page.locator("#timeline-legend")).to_contain_text("counts from the job's creation")
    assert page.evaluate("window.notReloaded") is True
    page.screenshot(path=str(tmp_path / "job.png"), full_page=True)
    tab.clean()
