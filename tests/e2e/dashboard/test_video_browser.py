"""Video jobs in a real browser (Debian's Chromium driven by Playwright, as test_dashboard_browser.py does): the
dashboard lists a video with its poster and shows BFL's status words and progress while a task runs; a
``<video>`` element plays the stored MP4 and seeks in it, through byte ranges."""

from __future__ import annotations

import re
import time

import pytest
import redis
from playwright.sync_api import expect

from browser_helpers import Tab, loaded_width, needs_chromium, row, sign_in
from conftest import ready_payload
from fluxhook.store.keys import KEYS
from mp4_samples import make_mp4

pytestmark = needs_chromium

MP4 = make_mp4(seconds=4, width=320, height=180)


@pytest.fixture()
def tab(chromium, stack):
    context = chromium.new_context(base_url=stack.base_url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    tab = Tab(context.new_page(), stack.base_url)
    yield tab
    context.close()


def _video_job(api, spy) -> dict:
    job = api.submit("[pending] a fox runs through snow")
    url = spy.route("/browser-video.mp4", body=MP4, headers={"Content-Type": "video/mp4"})
    assert api.callback(job["id"], ready_payload(job["bfl_id"], url)).status_code == 200
    return api.wait_for(job["id"], "stored")


def test_the_list_shows_the_poster_and_bfls_words_while_a_task_runs(tab, api, sim, spy, stack):
    page = tab.page
    video = _video_job(api, spy)
    thinking = api.submit("[pending] a video still reasoning")
    assert api.callback(thinking["id"], {"id": thinking["bfl_id"], "status": "Reasoning",
                                         "progress": 0.35}).status_code == 200
    # Not polled while the page is watched: the simulator's poll answer (Pending, 50 %) would replace the callbacks'
    # progress. After the callback, which sets the running job's next look itself.
    redis.Redis.from_url(stack.env["REDIS_URL"]).zadd(KEYS.due, {thinking["id"]: time.time() + 3600})

    sign_in(page)

    expect(row(page, thinking["id"]).locator('[data-field="running"]')).to_have_text("Reasoning · 35 %")
    thumbnail = row(page, video["id"]).locator(".thumb a.video img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
    # The poster (320x180) as the variant the list's 64 px need, not the 256-px thumbnail.
    assert loaded_width(thumbnail) == 64
    assert "/poster?" in thumbnail.evaluate("img => img.currentSrc") and "w=64&format=auto" in thumbnail.evaluate(
        "img => img.currentSrc")

    # Generating, then later: the row follows without a reload.
    page.evaluate("window.notReloaded = true")
    assert api.callback(thinking["id"], {"id": thinking["bfl_id"], "status": "Generating",
                                         "progress": 0.8}).status_code == 200
    expect(row(page, thinking["id"]).locator('[data-field="running"]')).to_have_text("Generating · 80 %")
    assert page.evaluate("window.notReloaded") is True
    tab.clean()


def test_the_job_page_plays_the_video_and_seeks_in_it(tab, api, sim, spy):
    page = tab.page
    job = _video_job(api, spy)
    ranges: list[tuple[int, str]] = []
    page.on("response", lambda r: "/video?" in r.url and ranges.append((r.status, r.request.headers.get("range", ""))))

    sign_in(page, goto=f"/jobs/{job['id']}")
    expect(page).to_have_url(re.compile(f"/jobs/{job['id']}$"))
    player = page.locator("video#player")
    expect(player).to_have_attribute("poster", re.compile(f"/v1/jobs/{job['id']}/poster\\?token="))
    expect(page.locator('[data-field="image_info"]')).to_contain_text("4 s at 24 fps · sound")

    duration = player.evaluate("""v => new Promise((resolve, reject) => {
        if (v.readyState >= 1) return resolve(v.duration);
        v.addEventListener('loadedmetadata', () => resolve(v.duration), {once: true});
        v.addEventListener('error', () => reject(new Error('media error ' + (v.error && v.error.code))), {once: true});
    })""")
    assert duration == pytest.approx(4.0, abs=0.1)

    played = player.evaluate("""async v => {
        v.muted = true;
        await v.play();
        await new Promise(resolve => { const t = () => v.currentTime > 0.3 ? resolve() : requestAnimationFrame(t); t(); });
        v.pause();
        return v.currentTime;
    }""")
    assert played > 0.3

    seeked = player.evaluate("""v => new Promise(resolve => {
        v.addEventListener('seeked', () => resolve([v.currentTime, v.readyState]), {once: true});
        v.currentTime = 3.0;
    })""")
    assert seeked[0] == pytest.approx(3.0, abs=0.05) and seeked[1] >= 2  # a frame there is decoded
    assert any(status == 206 and value.startswith("bytes=") for status, value in ranges), ranges
    tab.clean()
