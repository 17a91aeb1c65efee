"""A job's page in headless Chromium: its timeline reads well at a phone's 390 × 844 and a desktop's 1400 × 900,
and "Copy as curl" copies.

Each event's title stays on one line (at 390 px its first word once stayed beside the time while the rest dropped
a line: "Job" / "created"), and nothing in the timeline overlaps, is too small or leaves the window. "Copy as
curl" puts the job's first command on the clipboard and says so on the page; where the browser offers no
clipboard it selects the command instead, and says how to copy it.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from browser_helpers import Tab, needs_chromium, sign_in
from layout_checks import BROKEN, FAULTS, overflow

pytestmark = needs_chromium

SIZES = [(390, 844), (1400, 900)]




@pytest.fixture()
def job(api) -> dict:
    return api.wait_for(api.submit("a lighthouse on a cliff at dawn")["id"], "stored")


def open_job(tab: Tab, job: dict):
    page = tab.page
    sign_in(page, goto=f"/jobs/{job['id']}")
    expect(page).to_have_url(re.compile(f"/jobs/{job['id']}$"))
    expect(page.locator("#timeline")).to_contain_text("Job stored")
    page.wait_for_load_state()  # the stylesheet and the script applied: what is measured is the page as shown
    return page


def test_the_timeline_reads_well_at_both_sizes(open_tab, job, tmp_path):
    for width, height in SIZES:
        tab = open_tab(width, height)
        page = open_job(tab, job)
        titles = page.locator("#timeline li strong").all_inner_texts()
        assert titles[0] == "Job created" and titles[-1] == "Job stored" and "Downloaded and stored" not in titles
        broken = page.evaluate(BROKEN, ["#timeline li", titles])  # each title on one line
        assert broken == [], f"at {width} px: {broken}"
        faults = page.evaluate(FAULTS, ["#timeline li", 10])
        assert not faults, f"at {width} px:\n" + "\n".join(faults)
        scroll, client = overflow(page)
        assert scroll <= client
        page.locator("#timeline").screenshot(path=str(tmp_path / f"timeline-{width}.png"))
        tab.clean()


def test_copy_as_curl_copies_and_says_so(open_tab, job, tmp_path):
    tab = open_tab(390, 844)
    page = open_job(tab, job)
    origin = re.match(r"https?://[^/]+", page.url).group(0)
    command = f'curl -s {origin}/v1/jobs/{job["id"]} -H "Authorization: Bearer $TOKEN"'

    page.locator("#api summary").click()
    status = page.locator("#api [role=status]")
    expect(status).to_be_visible()
    expect(status).to_contain_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == command
    # The other commands, each with its own button.
    copies = page.locator("#api button[data-copy]")
    expect(copies).to_have_count(3)
    copies.nth(1).click()
    expect(status).to_contain_text("Download its image")
    assert page.evaluate("navigator.clipboard.readText()").startswith(f"curl -sL -o {job['id']}.")
    page.screenshot(path=str(tmp_path / "copied.png"))
    tab.clean()


def test_without_a_clipboard_copy_as_curl_selects_the_command(open_tab, job):
    tab = open_tab(1400, 900, clipboard=False)
    page = open_job(tab, job)
    assert page.evaluate("navigator.clipboard") is None
    origin = re.match(r"https?://[^/]+", page.url).group(0)

    page.locator("#api summary").click()
    expect(page.locator("#api pre").first).to_be_visible()
    selected = page.evaluate("window.getSelection().toString()")
    assert selected == f'curl -s {origin}/v1/jobs/{job["id"]} -H "Authorization: Bearer $TOKEN"'
    status = page.locator("#api [role=status]")
    expect(status).to_be_visible()
    expect(status).to_contain_text("Ctrl+C")
    tab.clean()
