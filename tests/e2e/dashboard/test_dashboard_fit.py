"""The dashboard fits the window, in headless Chromium: measured from the layout, not by eye.

The job list never overflows sideways at common desktop widths and keeps each model name on one
line, whatever its rows hold (rows with each cell as wide as it gets are measured); a phone-sized window still
shows each job's status, model and cost. The filters above the list lie in whole rows, never one alone on a row:
one row at a desktop's width, two of four on a tablet's, two columns on a phone's, where the form still filters.
A job's page collapses a long prompt behind "show all" (no script needed), and offers its file to download, its API
calls as curl, and a confirmed, CSRF-protected delete.
``make screenshots`` runs these to remake the screenshots in docs/, so they show the dashboard as it is.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
import redis
import requests
from playwright.sync_api import expect

from browser_helpers import Tab, needs_chromium, row, sign_in
from conftest import TEST_MODELS
from devtools.processes import ROOT
from fluxhook.core import catalog
from fluxhook.core import job as st
from fluxhook.core.errors import FluxhookError
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.wait_reasons import WaitReason
from fluxhook.store.jobs import JobStore
from layout_checks import FAULTS, ROWS, overflow
from receiver.dashboard_view import reason_words

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
    """Jobs as a list shows them: a kontext model, a long prompt, an error, a video; the images as generations
    look (1 MP JPEG scenes), for the screenshots."""
    sim.settings(scene_images=True, image_format="jpeg")
    stored = api.wait_for(api.submit(LONG_PROMPT[:1990], model="flux-kontext-max")["id"], "stored")
    failed = api.submit("[error] refused by BFL", model="flux-2-pro")
    video = api.post("/v1/jobs", json={"model": "flux-3-video", "input": {"mode": "t2v", "prompt": "a paper boat on a stream"}})
    api.wait_for(failed["id"], "failed")
    return {"stored": stored, "failed": failed, "video": video.json()}


# The longest model name a job may carry: the catalog the stack runs with (the shipped one and the suite's own).
LONGEST_MODEL = max(catalog.load(TEST_MODELS, []).models, key=len)


def _error_codes(error: type[FluxhookError]) -> list[str]:
    return [error.code] + [code for sub in error.__subclasses__() for code in _error_codes(sub)]


LONGEST_CODE = max(_error_codes(FluxhookError), key=len)
LONGEST_WAIT = str(max(WaitReason, key=lambda reason: len(reason_words(reason))))


@pytest.fixture()
def widest_rows(stack):
    """Rows with each cell as wide as it gets: the longest model name, BFL's own word for a running task as long as
    a job keeps it (MAX_BFL_STATUS) at 100 %, the longest wait's words, the longest error code, steps of just under
    an hour (longer ones expire) and a four-figure price. Written as records no process acts on (no task at BFL,
    no place in line, never due), so they read as written while measured; removed after."""
    jobs = JobStore(redis.Redis.from_url(stack.env["REDIS_URL"]))
    now = time.time()
    hour = 3599.5  # "+59 min 59 s"

    def record(**fields) -> str:
        job = Job(id=new_job_id(), model=LONGEST_MODEL, input={"prompt": LONG_PROMPT}, created_at=now,
                  updated_at=now, **fields)
        return jobs.create(job)[0].id

    made = [
        record(status=st.SUBMITTED, bfl_status=("Generating frames " * 3)[:st.MAX_BFL_STATUS], progress=1.0,
               submitted_at=now - 60),
        record(status=st.QUEUED, waiting_reason=LONGEST_WAIT),
        record(status=st.MODERATED, error={"code": LONGEST_CODE, "message": "-"}, submitted_at=now - hour,
               finished_at=now, cost_credits=9999.75),
        record(status=st.STORED, source="webhook", submitted_at=now - 2 * hour, finished_at=now - hour,
               completed_at=now, cost_credits=9999.75),
    ]
    yield made
    for job_id in made:
        jobs.delete(job_id)


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


def signed_in_list(page, shown: str) -> None:
    """Sign in onto the job list, with the job ``shown`` listed and the stylesheet applied. The rows can be shown
    before a busy server has answered for the stylesheet: measured then, the list is laid out unstyled, a long model
    name wrapping at its hyphens."""
    sign_in(page)
    expect(page).to_have_url(re.compile(r"/jobs$"))
    expect(row(page, shown)).to_be_visible()
    page.wait_for_load_state()


def assert_fits(page, width: int) -> dict:
    """The job list neither overflows nor cuts a header, each model name on one line; what was measured."""
    measured = page.evaluate(MEASURE)
    scroll, client = measured["table"]
    assert scroll <= client, f"the job list is {scroll} px wide in {client} px at a {width} px window"
    assert measured["page"][0] <= measured["page"][1]
    assert measured["cut"] == []  # "Cost" was cut to "C…"
    assert measured["lines"] and {lines for _, lines in measured["lines"]} == {1}, measured["lines"]
    return measured


@pytest.mark.parametrize("width", [1280, 1440, 1920])
def test_the_job_list_fits_wide_windows_with_each_model_on_one_line(browser_context, varied_jobs, width, shots):
    tab = browser_context(width)
    page = tab.page
    signed_in_list(page, varied_jobs["stored"]["id"])
    assert_fits(page, width)
    prompt = row(page, varied_jobs["stored"]["id"]).locator('[data-field="prompt"]')
    assert prompt.evaluate("el => el.getBoundingClientRect().height") < 24  # one line, cut with an ellipsis
    if width == 1280:
        shot = shots / "dashboard.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
    tab.clean()


@pytest.mark.parametrize("width", [1280, 1920])
def test_the_widest_rows_fit_with_each_model_on_one_line_and_room_for_the_job(browser_context, widest_rows, width):
    tab = browser_context(width)
    page = tab.page
    signed_in_list(page, widest_rows[-1])
    running = row(page, widest_rows[0]).locator('[data-field="running"]')
    expect(running).to_have_text(re.compile(r" · 100 %$"))
    expect(row(page, widest_rows[1]).locator('[data-field="submitted"]')).to_have_text(
        f"waiting: {reason_words(LONGEST_WAIT)}")
    expect(row(page, widest_rows[3]).locator('[data-field="stored"]')).to_have_text("+59 min 59 s")
    for job_id in widest_rows:
        expect(row(page, job_id).locator('[data-field="model"]')).to_have_text(LONGEST_MODEL)
    assert_fits(page, width)
    # BFL's long word is cut short with an ellipsis, on one line; the job column keeps room for the id's start
    # (about 90 px here: 64 leaves "job_01…" and its ellipsis, with room for another font's metrics).
    assert running.evaluate("el => el.scrollWidth > el.clientWidth && el.getClientRects().length === 1")
    job_width = row(page, widest_rows[0]).locator("td.job").evaluate("el => el.getBoundingClientRect().width")
    assert job_width >= 64, job_width
    tab.clean()


# The job list's filters, left to right, as the form lays them out (``layout_checks.ROWS``).
FILTERS = ["Status", "Model", "Key", "Account", "Prompt holds", "From (UTC)", "To (UTC)", "Filter"]


@pytest.mark.parametrize("width", [1400, 1280, 1920, 1024])
def test_the_job_filters_take_one_row_of_a_desktop_window_two_of_a_tablet(browser_context, width):
    tab = browser_context(width)
    page = tab.page
    sign_in(page)
    expect(page).to_have_url(re.compile(r"/jobs$"))
    page.wait_for_load_state()  # laid out with the stylesheet
    # At 1400 px "To (UTC)" went alone onto a second row, with the button.
    assert page.evaluate(ROWS, ".jobfilters") == ([FILTERS] if width >= 1100 else [FILTERS[:4], FILTERS[4:]])
    assert page.evaluate(FAULTS, [".jobfilters", 11]) == []
    tab.clean()


def test_the_job_filters_fit_a_phone_and_filter(browser_context):
    tab = browser_context(390, 844)
    page = tab.page
    sign_in(page)
    expect(page).to_have_url(re.compile(r"/jobs$"))
    page.wait_for_load_state()
    rows = page.evaluate(ROWS, ".jobfilters")
    # Two a row, the prompt's box across the window; every filter there, in the form's order.
    assert [name for row in rows for name in row] == FILTERS, rows
    assert max(len(row) for row in rows) == 2 and ["Prompt holds"] in rows, rows
    assert page.evaluate(FAULTS, [".jobfilters", 11]) == []
    scroll, client = overflow(page)
    assert scroll <= client
    for name in ("status", "model", "key_id", "account", "q", "from", "to"):
        assert page.locator(f'.jobfilters [name="{name}"]').bounding_box()["width"] >= 120, name
    page.locator('.jobfilters [name="to"]').fill("2000-01-02")
    page.locator(".jobfilters button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/jobs\?.*to=2000-01-02"))
    expect(page.locator("#empty")).to_be_visible()  # nothing made before 2000
    tab.clean()


def test_a_narrow_window_shows_status_model_and_cost(browser_context, varied_jobs, shots):
    tab = browser_context(420, 860)
    page = tab.page
    signed_in_list(page, varied_jobs["stored"]["id"])
    job = row(page, varied_jobs["stored"]["id"])
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
    assert commands[1].startswith(f"curl -sL -o {job['id']}.jpg {stack_url(page)}/v1/jobs/{job['id']}/image ")
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
