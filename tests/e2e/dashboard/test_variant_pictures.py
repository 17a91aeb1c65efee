"""The dashboard's pictures are the variants each screen needs, in headless Chromium on the session stack,
at a 1x and a 2x screen: the job list takes 64- or 128-px links of its ``srcset``, a batch's contact sheet 128 or 256,
the job page 640 or 1024 (its half of a 1280-px window), each ``format=auto``, answered AVIF to Chromium; each page's
pictures weigh less than the thumbnails or the original it showed before; a row that turns stored while the list is
open takes its variant too (the script's path). Photo-like 1024x1024 JPEGs (the simulator's landscapes)."""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from typing import Iterator

import pytest
import requests
from playwright.sync_api import expect

from browser_helpers import Tab, needs_chromium, row, sign_in
from conftest import API
from devtools.processes import wait_until

pytestmark = needs_chromium

SIZE = 1024


@pytest.fixture()
def photos(sim):
    sim.settings(scene_images=True, image_format="jpeg")
    return sim


@contextmanager
def screen(chromium, stack, scale: int) -> Iterator[tuple[Tab, list]]:
    """A signed-in tab of a 1280 x 860 window at ``scale`` device pixels a CSS pixel, and the image answers it got
    (url, content type, body bytes) from then on."""
    context = chromium.new_context(base_url=stack.base_url, viewport={"width": 1280, "height": 860},
                                   device_scale_factor=scale)
    context.set_default_timeout(20_000)
    tab = Tab(context.new_page(), stack.base_url)
    sign_in(tab.page)
    images: list = []

    def finished(request):
        answer = request.response()
        kind = (answer.headers.get("content-type") or "") if answer else ""
        if kind.startswith("image/"):
            images.append((request.url, kind, request.sizes()["responseBodySize"]))

    tab.page.on("requestfinished", finished)
    try:
        yield tab, images
    finally:
        context.close()


def _stored(api: API, prompt: str) -> dict:
    answer = api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": prompt, "width": SIZE,
                                                                         "height": SIZE}})
    assert answer.status_code == 202, answer.text
    return api.wait_for(answer.json()["id"], "stored", timeout=30)


def _all_loaded(page) -> None:
    page.wait_for_load_state("networkidle")
    page.wait_for_function("Array.from(document.images).every(img => img.complete && img.naturalWidth > 0)")


def _thumbnail_bytes(browser_session: requests.Session, base_url: str, job_ids: list[str]) -> int:
    """What the list and the sheet showed before: each job's 256-px WebP thumbnail's bytes."""
    total = 0
    for job_id in job_ids:
        answer = browser_session.get(f"{base_url}/jobs/{job_id}/thumbnail", timeout=10)
        assert answer.status_code == 200
        total += len(answer.content)
    return total


@pytest.mark.parametrize(("scale", "list_width", "sheet_width", "page_width"), [(1, 64, 128, 640), (2, 128, 256, 1024)])
def test_each_page_takes_the_variants_its_screen_needs_and_weighs_less(chromium, stack, api, photos, browser,
                                                                       scale, list_width, sheet_width, page_width):
    jobs = [_stored(api, f"a coastline at dusk {n}") for n in range(4)]
    made = api.post("/v1/batches", json={"model": "flux-2-pro", "items": [
        {"input": {"prompt": f"a harbour {n}", "width": SIZE, "height": SIZE}} for n in range(4)]}).json()
    wait_until(lambda: api.get(f"/v1/batches/{made['id']}").json()["ended_at"], timeout=60, message="the batch's end")
    items = [json.loads(line)["job_id"] for line in api.get(f"/v1/batches/{made['id']}/results").text.splitlines()]
    ids = [job["id"] for job in jobs]
    wait_until(lambda: all(api.job(i)["status"] == "stored" for i in items), timeout=30, message="the items stored")
    wait_until(lambda: all(browser.get(f"{stack.base_url}/jobs/{i}/thumbnail", timeout=10).ok for i in ids + items),
               timeout=30, message="every thumbnail made")

    with screen(chromium, stack, scale) as (tab, images):
        page = tab.page
        page.goto("/jobs")
        _all_loaded(page)
        for job_id in ids:
            picture = row(page, job_id).locator(".thumb img")
            shown = picture.evaluate("img => img.currentSrc")
            assert f"/v1/jobs/{job_id}/image?token=" in shown and f"&w={list_width}&format=auto" in shown, shown
        listed = [(url, kind, size) for url, kind, size in images if any(f"/v1/jobs/{i}/image" in url for i in ids)]
        assert len(listed) == len(ids) and {kind for _, kind, _ in listed} == {"image/avif"}
        assert sum(size for *_, size in listed) < _thumbnail_bytes(browser, stack.base_url, ids)

        images.clear()
        page.goto(f"/batches/{made['id']}")
        _all_loaded(page)
        tiles = page.locator("#sheet li img")
        expect(tiles).to_have_count(len(items))
        assert all(f"&w={sheet_width}&format=auto" in src for src in tiles.evaluate_all(
            "imgs => imgs.map(img => img.currentSrc)"))
        sheet = sum(size for url, _, size in images if "/v1/jobs/" in url)
        thumbnails = _thumbnail_bytes(browser, stack.base_url, items)
        # At 2x a tile takes 256 px, the thumbnail's own size: AVIF's headers weigh as much as they save on pictures
        # this small and this smooth (the landscapes), so only "no more than a quarter over" holds there.
        assert sheet < thumbnails * (1.0 if scale == 1 else 1.25), (sheet, thumbnails)

        images.clear()
        page.goto(f"/jobs/{ids[0]}")
        _all_loaded(page)
        shown = page.locator("#picture img").evaluate("img => img.currentSrc")
        assert f"&w={page_width}&format=auto" in shown, shown
        [(_, kind, size)] = [entry for entry in images if "/v1/jobs/" in entry[0]]
        assert kind == "image/avif" and size < jobs[0]["image"]["size"] / 3, (size, jobs[0]["image"]["size"])
        expect(page.locator("#picture a")).to_have_attribute("href", re.compile(rf"^/v1/jobs/{ids[0]}/image\?token="))
        print(f"{scale}x: list {sum(s for *_, s in listed):,} B, sheet {sheet:,} B (thumbnails {thumbnails:,}), job page "
              f"{size:,} B (original {jobs[0]['image']['size']:,})")
        tab.clean()


def test_a_row_stored_while_the_list_is_open_takes_its_variant(chromium, stack, api, photos, browser):
    with screen(chromium, stack, 1) as (tab, _):
        page = tab.page
        page.goto("/jobs")
        expect(page.locator("#live")).to_have_text("live")  # its stream open: rows come as jobs change
        job = _stored(api, "a lighthouse, stored while its row is shown")
        wait_until(lambda: browser.get(f"{stack.base_url}/jobs/{job['id']}/thumbnail", timeout=10).ok, timeout=30,
                   message="its thumbnail made")
        api.submit("[pending] a later job: an event, and the list read again with the thumbnail made")
        picture = row(page, job["id"]).locator(".thumb img")
        expect(picture).to_have_attribute("srcset", re.compile(r"&w=64&format=auto 64w, .*&w=128&format=auto 128w$"),
                                          timeout=15_000)
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=picture.element_handle())
        assert "&w=64&format=auto" in picture.evaluate("img => img.currentSrc")
        tab.clean()
