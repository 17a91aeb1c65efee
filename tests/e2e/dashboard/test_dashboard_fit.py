"""The dashboard fits the window, in headless Chromium: measured from the layout, not by eye.

The job list never overflows sideways at common desktop widths and keeps each model name on one
line; a phone-sized window still shows each job's status, model and cost. A job's page collapses a
long prompt behind "show all" (no script needed), and offers its file to download, its API calls
as curl, and a confirmed, CSRF-protected delete. ``make screenshots`` runs these to remake the
screenshots in docs/, so they show the dashboard as it is.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from browser_helpers import Tab, needs_chromium, row, sign_in
from devtools.processes import ROOT

pytestmark = needs_chromium

DOCS = ROOT / "docs"
LONG_PROMPT = ("a lighthouse on a cliff at dawn, waves breaking on black rocks below, gulls in a pale sky, "
               "watercolor on rough paper with soft washes and hard edges, ") * 14  # about 2,000 characters


@pytest.fixture()
def shots(tmp_path) -> Path:
    """Where the screenshots go: docs/ under ``make screenshots`` (FLUXHOOK_SCREENSHOTS=1), else the test's folder."""
    return DOCS if os.environ.get("FLUXHOOK_SCREENSHOTS") == "1" else tmp_path


@pytest.fixture()
def browser_context(chromium, stack):
    contexts = []

    def open_tab(width: int, height: int = 900) -> Tab:
        context = chromium.new_context(base_url=stack.base_url, viewport={"width": width, "height": height})
        context.set_default_timeout(15_000)
        contexts.append(context)
        return Tab(context.new_page(), stack.base_url)

    yield open_tab
    for context in contexts:
        context.close()


@pytest.fixture()
def varied_jobs(api, sim):
    """Jobs that stretch a row: the longest model name of BFL's, a long prompt, an error, a video; the images
    as generations look (1 MP JPEG scenes), for the screenshots."""
    sim.settings(scene_images=True, image_format="jpeg")
    stored = api.wait_for(api.submit(LONG_PROMPT[:1990], model="flux-kontext-max")["id"], "stored")
    failed = api.submit("[error] refused by BFL", model="flux-2-pro")
    video = api.post("/v1/jobs", json={"model": "flux-3-video", "input": {"prompt": "a paper boat on a stream"}})
    api.wait_for(failed["id"], "failed")
    return {"stored": stored, "failed": failed, "video": video.json()}


def stack_url(page) -> str:
    """The origin the page was loaded from."""
    return re.match(r"https?://[^/]+", page.url).group(0)


# What overflows, as the layout has it (scrollWidth past clientWidth), for the list's table, the page, and the
# model and cost cells; and how many lines each model name takes.
MEASURE = """() => {
  const wrap = document.querySelector('.tablewrap');
  const page = document.documentElement;
  const cells = [...document.querySelectorAll('#rows td.model a, #rows td.cost, thead th')];
  // One box per line an inline element is laid out on: a line count that does not hang on font metrics.
  const lines = [...document.querySelectorAll('#rows td.model a')].map(a => [a.textContent, a.getClientRects().length]);
  return {
    table: [wrap.scrollWidth, wrap.clientWidth],
    page: [page.scrollWidth, page.clientWidth],
    cut: cells.filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.textContent.trim()),
    lines: lines,
  };
}"""


@pytest.mark.parametrize("width", [1280, 1440, 1920])
def test_the_job_list_fits_wide_windows_with_each_model_on_one_line(browser_context, varied_jobs, width, shots):
    tab = browser_context(width)
    page = tab.page
    sign_in(page)
    expect(row(page, varied_jobs["stored"]["id"])).to_be_visible()
    measured = page.evaluate(MEASURE)
    scroll, client = measured["table"]
    assert scroll <= client, f"the job list is {scroll} px wide in {client} px at a {width} px window"
    assert measured["page"][0] <= measured["page"][1]
    assert measured["cut"] == []  # "Cost" was cut to "C…"
    assert measured["lines"] and {lines for _, lines in measured["lines"]} == {1}, measured["lines"]
    prompt = row(page, varied_jobs["stored"]["id"]).locator('[data-field="prompt"]')
    assert prompt.evaluate("el => el.getBoundingClientRect().height") < 24  # one line, cut with an ellipsis
    if width == 1280:
        shot = shots / "dashboard.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
    tab.clean()


def test_a_narrow_window_shows_status_model_and_cost(browser_context, varied_jobs, shots):
    tab = browser_context(420, 860)
    page = tab.page
    sign_in(page)
    job = row(page, varied_jobs["stored"]["id"])
    expect(job).to_be_visible()
    for field, text in (("status", "stored"), ("model", "flux-kontext-max"), ("cost", re.compile(r"credit"))):
        cell = job.locator(f'[data-field="{field}"]')
        expect(cell).to_be_visible()
        expect(cell).to_have_text(text)
        box = cell.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 420, (field, box)
    page_width = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert page_width[0] <= page_width[1]
    expect(job.locator('[data-field="submitted"]')).to_be_hidden()  # times are on the job's page
    page.screenshot(path=str(shots / "dashboard-narrow.png"))
    tab.clean()


def test_a_job_page_collapses_a_long_prompt_and_offers_download_curl_and_delete(browser_context, varied_jobs, api,
                                                                               shots):
    job = varied_jobs["stored"]
    tab = browser_context(1280, 1000)
    page = tab.page
    sign_in(page, goto=f"/jobs/{job['id']}")
    expect(page).to_have_url(re.compile(f"/jobs/{job['id']}$"))

    page.locator("#picture img").wait_for()
    page.screenshot(path=str(shots / "job.png"))

    prompt = page.locator("dd.prompt")
    more = prompt.locator("details.more")
    expect(more.locator(".toggle")).to_have_text("show all 1,990 characters")
    assert len(prompt.inner_text()) < 400  # collapsed: the start and "show all"
    more.locator("summary").click()
    expect(more.locator(".whole")).to_have_text(job["prompt"])

    download = page.locator("#download")
    expect(download).to_have_attribute("download", f"{job['id']}.jpg")
    image = requests.get(stack_url(page) + download.get_attribute("href"), timeout=10)
    assert image.status_code == 200 and image.content[:3] == b"\xff\xd8\xff"  # the stored JPEG

    page.locator("#api summary").click()
    commands = page.locator("#api pre").all_inner_texts()
    assert commands[0] == f'curl -s {stack_url(page)}/v1/jobs/{job["id"]} -H "Authorization: Bearer $TOKEN"'
    assert commands[1].startswith(f"curl -s -o {job['id']}.jpg {stack_url(page)}/v1/jobs/{job['id']}/image ")
    assert '"model": "flux-kontext-max"' in commands[2]

    # Without this session's CSRF token the delete is refused and the job stays.
    refused = page.request.post(f"/jobs/{job['id']}/delete", form={"csrf_token": "forged"})
    assert refused.status == 400 and "CSRF" in refused.json()["error"]["message"]
    assert api.get(f"/v1/jobs/{job['id']}").status_code == 200

    # Deleting takes two steps: "Delete…" opens the form, its button deletes.
    expect(page.locator("#delete form")).to_be_hidden()
    page.locator("#delete summary").click()
    page.locator("#delete button[type=submit]").click()
    expect(page).to_have_url(re.compile(rf"/jobs\?deleted={job['id']}$"))
    expect(page.locator(".notice.ok")).to_contain_text(job["id"])
    assert api.get(f"/v1/jobs/{job['id']}").status_code == 404
    tab.clean()


def test_the_video_job_page_downloads_the_mp4(browser_context, varied_jobs, api):
    video = api.wait_for(varied_jobs["video"]["id"], "stored", timeout=30)
    tab = browser_context(1280)
    page = tab.page
    sign_in(page, goto=f"/jobs/{video['id']}")
    expect(page.locator("#download")).to_have_attribute("download", f"{video['id']}.mp4")
    body = requests.get(stack_url(page) + page.locator("#download").get_attribute("href"), timeout=10).content
    assert body[4:8] == b"ftyp"
    tab.clean()



@pytest.mark.parametrize("width", [420, 1280])
def test_no_page_overflows_sideways(browser_context, varied_jobs, width):
    tab = browser_context(width)
    page = tab.page
    sign_in(page, goto="/")
    for path in ("/", "/?range=30d", "/jobs", f"/jobs/{varied_jobs['stored']['id']}", f"/jobs/{varied_jobs['failed']['id']}"):
        page.goto(path)
        page.locator("main").wait_for()
        scroll, client = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        # What sticks out, to say where to look when this fails.
        wide = page.evaluate("""w => [...document.querySelectorAll('main *')]
            .filter(e => e.getBoundingClientRect().right > w).slice(0, 5)
            .map(e => e.tagName + ' ' + e.getAttribute('class') + ' ' + Math.round(e.getBoundingClientRect().right))""",
                             client)
        assert scroll <= client, f"{path} is {scroll} px wide in a {client} px window: {wide}"
    tab.clean()
