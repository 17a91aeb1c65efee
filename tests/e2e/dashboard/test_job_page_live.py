"""A running video's job page follows it live in headless Chromium, at a phone's 390 px and a desktop's 1400 px: the
page, opened once and never reloaded, shows BFL's word go Pending, Reasoning, Generating with its progress rising
(read from the page itself, several values), the cancel button beside the job's other actions while it runs, and
then the stored job as its JSON has it, with the cancel button gone. It fits the window at both widths, nothing in
its facts cut or overlapping. ``make screenshots`` saves the page mid-progress as docs/job-live-390.png and
docs/job-live-1400.png.

The simulator answers the submission after a second, as BFL does, and the task takes ``SECONDS``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from browser_helpers import needs_chromium, sign_in
from devtools.processes import ROOT, wait_until
from layout_checks import FAULTS, overflow

pytestmark = needs_chromium

SECONDS = 16
SIZES = {390: 844, 1400: 900}
WORDS = ("Pending", "Reasoning", "Generating")

# What the page shows of the job now: its status, BFL's word and progress, and whether its cancel button is shown.
SHOWN = """() => ({
  status: document.querySelector('h1 [data-field="status"]').textContent,
  word: document.querySelector('[data-field="bfl_status"]').textContent,
  progress: document.querySelector('[data-field="progress"]').textContent,
  cancel: !document.getElementById('cancel').hidden,
  bar: (bar => bar.hidden ? null : bar.value)(document.getElementById('progress-bar')),
  reloaded: window.notReloaded !== true,
})"""


@pytest.fixture()
def shots(tmp_path) -> Path:
    """docs/ under ``make screenshots`` (FLUXHOOK_SCREENSHOTS=1), else the test's folder."""
    return ROOT / "docs" if os.environ.get("FLUXHOOK_SCREENSHOTS") == "1" else tmp_path


@pytest.fixture()
def video(api, sim) -> dict:
    sim.settings(submit_delay=1.0)
    created = api.post("/v1/jobs", json={"model": "flux-3-video", "input": {
        "mode": "t2v", "duration": 5, "prompt": f"a lighthouse at dusk, waves rising [seconds-{SECONDS}]"}})
    assert created.status_code == 202, created.text
    return created.json()


def percent(text: str) -> int | None:
    found = re.fullmatch(r"(\d+) %", text)
    return int(found.group(1)) if found else None


@pytest.mark.parametrize("width", sorted(SIZES))
def test_the_job_page_follows_a_running_video_without_a_reload(open_tab, api, video, width, shots):
    tab = open_tab(width, SIZES[width])
    page = tab.page
    sign_in(page, goto=f"/jobs/{video['id']}")
    expect(page).to_have_url(re.compile(f"/jobs/{video['id']}$"))
    page.wait_for_load_state()
    page.evaluate("window.notReloaded = true")

    seen: list[dict] = []

    def look(until) -> dict | None:
        shown = page.evaluate(SHOWN)
        assert not shown["reloaded"]
        if not seen or seen[-1] != shown:
            seen.append(shown)
        return shown if until(shown) else None

    # Mid-way, as the page follows the job: BFL's word has changed (to Generating) and the progress has shown two
    # values or more.
    def moving(shown: dict) -> bool:
        values = {percent(s["progress"]) for s in seen} - {None}
        words = {s["word"] for s in seen} & set(WORDS)
        return len(values) >= 2 and len(words) >= 2 and shown["word"] == "Generating" and shown["progress"] != ""

    mid = wait_until(lambda: look(moving), timeout=SECONDS + 10, interval=0.2,
                     message="BFL's word and progress changing on the page")
    assert mid["status"] == "submitted" and mid["bar"] == percent(mid["progress"])
    # The cancel button: shown while the job runs, the first of its actions, inside the window.
    assert mid["cancel"]
    first = page.locator("#actions > :not([hidden])").first
    assert first.get_attribute("id") == "cancel"
    box = page.locator("#cancel button").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width
    # What never changes keeps what the server wrote (each update once emptied the app key's cell).
    expect(page.locator("#app-key")).to_have_text("an admin token")
    scroll, client = overflow(page)
    assert scroll <= client, f"the page is {scroll} px wide in a {client} px window"
    faults = page.evaluate(FAULTS, [".jobpage h1, .facts", 10])
    assert not faults, f"at {width} px:\n" + "\n".join(faults)
    page.screenshot(path=str(shots / f"job-live-{width}.png"))

    stored = wait_until(lambda: look(lambda s: s["status"] == "stored"), timeout=SECONDS + 30, interval=0.2,
                        message="the page to show the job stored")
    job = api.job(video["id"])
    assert job["status"] == "stored"
    expect(page.locator("#picture video#player")).to_be_attached()
    expect(page.locator('[data-field="cost_detail"]')).to_contain_text(f"{job['cost']['credits']:g} credits")
    expect(page.locator('[data-field="sha256"]')).to_have_text(job["video"]["sha256"])
    assert not stored["cancel"] and stored["progress"] == "" and stored["bar"] is None
    expect(page.locator("#live")).to_have_text("final")

    # What the page showed on the way: BFL's words in their order, never back, and the progress never falling.
    words = [s["word"] for s in seen if s["word"] in WORDS]
    assert [WORDS.index(w) for w in words] == sorted(WORDS.index(w) for w in words), words
    assert "Generating" in words, seen
    values = [percent(s["progress"]) for s in seen if percent(s["progress"]) is not None]
    assert values == sorted(values) and len(set(values)) >= 2, values
    scroll, client = overflow(page)
    assert scroll <= client
    tab.clean()
