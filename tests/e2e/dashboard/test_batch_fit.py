"""The Batches page and a batch's page read well in headless Chromium, at a phone's 390 × 844, a small laptop's
1024 × 768 and a desktop's 1400 × 900: measured from the layout (``layout_checks``), not by eye.

Nothing in a batch's row, its facts or its contact sheet is covered, cut, spilling out, smaller than 10 px or past the
window; the page is never wider than the window; a model name never breaks at its hyphen, nor a batch's id, its
status or a count's chip; the sheet's tiles are square, in the window, several to a line at every size, each holding
its thumbnail whole; each tile shows its index and, under it, its item's sku, so a catalog's look-alike pictures are
told apart on a phone too. A running batch's actions (Cancel batch, its items, its results) sit in the window. ``make
screenshots`` remakes docs/batches.png, docs/batch.png and docs/batch-narrow.png here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from browser_helpers import needs_chromium, sign_in
from conftest import API
from devtools.processes import ROOT, wait_until
from key_helpers import make_key
from layout_checks import BROKEN, FAULTS, overflow

pytestmark = needs_chromium

SIZES = [pytest.param(390, 844, id="390x844"), pytest.param(1024, 768, id="1024x768"),
         pytest.param(1400, 900, id="1400x900")]
MODELS = ["flux-2-pro", "flux-kontext-max"]
# Each item's prompt: most are stored, a few fail or are moderated, so the sheet shows every kind of tile.
PROMPTS = [f"product shot {i}, a ceramic mug on oak" + (" [error]" if i in (3, 9) else " [content-moderated]"
                                                         if i == 6 else "") for i in range(14)]


@pytest.fixture()
def shots(tmp_path) -> Path:
    """docs/ under ``make screenshots`` (FLUXHOOK_SCREENSHOTS=1), else the test's folder."""
    return ROOT / "docs" if os.environ.get("FLUXHOOK_SCREENSHOTS") == "1" else tmp_path


def shot(page, folder: Path, name: str, *, full: bool = False) -> None:
    page.screenshot(path=str(folder / name), full_page=full)


@pytest.fixture(scope="module")
def batches(stack, simulator) -> Iterator[dict]:
    """An ended batch of a key with a long name (stored, failed and moderated items, metadata), and a running one of
    the catalog's longest model name, held at BFL by its key's one place: the same two at every size."""
    api = API(stack.base_url)
    _, shop = make_key(api, name="newsletter-generator-prod")
    ended = shop.post("/v1/batches", json={"model": "flux-2-pro", "metadata": {"catalog": "mugs", "season": "winter"},
                                           "items": [{"input": {"prompt": p}, "metadata": {"sku": f"MUG-{i:04d}"}}
                                                     for i, p in enumerate(PROMPTS)]}).json()
    _, held = make_key(api, name="kontext-bulk", max_active=1)
    running = held.post("/v1/batches", json={"model": "flux-kontext-max", "items": [
        {"input": {"prompt": f"[pending] an edit that stays at BFL {i}"}} for i in range(4)]}).json()
    wait_until(lambda: shop.get(f"/v1/batches/{ended['id']}").json()["ended_at"], timeout=60, message="the batch's end")
    wait_until(lambda: held.get(f"/v1/batches/{running['id']}").json()["counts"]["submitted"] == 1, timeout=30,
               message="one item at BFL")
    yield {"ended": ended, "running": running}
    # The session's stack is shared: the running batch goes, and its item BFL holds ends, so no later test meets it.
    held.post(f"/v1/batches/{running['id']}/cancel")
    for job in held.get("/v1/jobs", params={"batch_id": running["id"]}).json()["jobs"]:
        if job["bfl_id"]:
            simulator.complete(job["bfl_id"])


def _fits(page, selectors: list[str], where: str) -> None:
    for selector in selectors:
        faults = page.evaluate(FAULTS, [selector, 10])
        assert not faults, f"{where}, {selector}:\n" + "\n".join(faults)
    scroll, client = overflow(page)
    assert scroll <= client, f"{where} is {scroll} px wide in a {client} px window"


@pytest.mark.parametrize("width, height", SIZES)
def test_the_batches_page_reads_well(open_tab, batches, width, height, shots, tmp_path):
    tab = open_tab(width, height)
    page = tab.page
    sign_in(page, goto="/batches")
    expect(page.locator("h1")).to_have_text("Batches")
    running = page.locator(f'tr[data-batch-id="{batches["running"]["id"]}"]')
    expect(running.locator('[data-field="done"]')).to_have_text(re.compile(r"^\d+ sent · 0 of 4 ended$"))
    page.wait_for_load_state()  # the stylesheet applied: what is measured is the page as shown

    _fits(page, ["tr[data-batch-id]", "header.top"], f"the Batches page at {width} px")
    ids = [batches[name]["id"] for name in ("ended", "running")]
    words = [*MODELS, *ids, "running", "ended", "newsletter-generator-prod"]
    assert page.evaluate(BROKEN, ["tr[data-batch-id]", words]) == []
    # Every figure of a row in sight, at every size: its status, progress bar, counts, key and cost.
    for field in ("status", "done", "counts", "key", "cost"):
        expect(running.locator(f'[data-field="{field}"]')).to_be_visible()
    expect(running.locator("progress")).to_be_visible()
    expect(running.locator('[data-field="counts"]')).to_have_text("3 queued · 1 submitted")
    shot(page, shots if width == 1400 else tmp_path, f"batches-{width}.png" if width < 1400 else "batches.png")
    tab.clean()


@pytest.mark.parametrize("width, height", SIZES)
def test_a_batchs_page_and_its_contact_sheet_read_well(open_tab, batches, width, height, shots, tmp_path):
    batch = batches["ended"]
    tab = open_tab(width, height)
    page = tab.page
    sign_in(page, goto=f"/batches/{batch['id']}")
    expect(page.locator("#batch-status")).to_have_text("ended")
    tiles = page.locator("#sheet li")
    expect(tiles).to_have_count(len(PROMPTS))
    # Every stored item's thumbnail, loaded (they load as they come into view).
    expect(page.locator("#sheet li[data-status=stored] img")).to_have_count(len(PROMPTS) - 3, timeout=30_000)
    page.locator("#sheet").scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.querySelectorAll('#sheet img')].every(i => i.complete && i.naturalWidth)")
    page.evaluate("window.scrollTo(0, 0)")

    _fits(page, [".batchpage > h1", ".batchpage .facts", "#sheet li", ".batchpage .pager", "header.top"],
          f"a batch's page at {width} px")
    names = ["flux-2-pro", batch["id"], "newsletter-generator-prod"]
    assert page.evaluate(BROKEN, [".batchpage", names]) == []
    chips = page.locator("#counts a").all_inner_texts()
    assert page.evaluate(BROKEN, ["#counts", chips]) == []  # "stored 11" on one line
    # The tiles: square, in the window, several to a line, each thumbnail filling its tile.
    boxes = [tile.bounding_box() for tile in page.locator("#sheet .tile").all()]
    assert all(abs(b["width"] - b["height"]) <= 1 and b["x"] >= 0 and b["x"] + b["width"] <= width for b in boxes)
    per_line = len([b for b in boxes if abs(b["y"] - boxes[0]["y"]) < 1])
    assert per_line >= (4 if width < 640 else 8), per_line
    # Each item told apart by its index on its tile and its sku under it, whole and in its column.
    expect(page.locator("#sheet .index")).to_have_text([f"#{i}" for i in range(len(PROMPTS))])
    expect(page.locator("#sheet .meta")).to_have_text([f"MUG-{i:04d}" for i in range(len(PROMPTS))])
    for tile, meta in zip(boxes, [m.bounding_box() for m in page.locator("#sheet .meta").all()], strict=True):
        assert meta["y"] >= tile["y"] + tile["height"] - 1, (tile, meta)
        assert tile["x"] - 1 <= meta["x"] and meta["x"] + meta["width"] <= tile["x"] + tile["width"] + 1, (tile, meta)
    image = page.locator("#sheet img").first.bounding_box()
    assert abs(image["width"] - boxes[0]["width"]) <= 2 and abs(image["height"] - boxes[0]["height"]) <= 2
    saved = {390: "batch-narrow.png", 1400: "batch.png"}  # docs/ shows the two sizes people see most
    shot(page, shots if width in saved else tmp_path, saved.get(width, f"batch-{width}.png"), full=True)
    # The widest id there can be (W is the widest letter of its alphabet) stays on one line too: ids are monospace.
    widest = "bat_" + "W" * 26
    page.evaluate("(id) => { document.querySelector('.batchpage h1 [data-field=id]').textContent = id; }", widest)
    assert page.evaluate(BROKEN, [".batchpage h1", [widest]]) == []
    tab.clean()


@pytest.mark.parametrize("width, height", SIZES)
def test_a_running_batchs_actions_are_in_the_window(open_tab, batches, width, height):
    tab = open_tab(width, height)
    page = tab.page
    sign_in(page, goto=f"/batches/{batches['running']['id']}")
    expect(page.locator("#batch-status")).to_have_text("running")
    expect(page.locator("#live")).to_have_text("live")
    page.wait_for_load_state()
    _fits(page, [".batchpage .facts", "#sheet li"], f"a running batch's page at {width} px")
    assert page.evaluate(BROKEN, [".batchpage", ["flux-kontext-max", "kontext-bulk"]]) == []
    for action in ("#cancel button", "#items-link", "#results-jsonl", "#results-zip"):
        box = page.locator(action).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (action, box)
    expect(page.locator("#sheet li").nth(0)).to_have_attribute("data-status", "submitted")
    expect(page.locator("#sheet li").nth(1).locator(".state")).to_have_text("queued")
    tab.clean()
