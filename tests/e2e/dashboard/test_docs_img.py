"""The API guide's `<img srcset sizes>` snippet (docs/api.md, "Ready for <img>"), read from the guide itself so the two
cannot drift (devtools/browser_page.py), filled with a stored job's real links and rendered in headless Chromium at a
phone's 390 px and a desktop's 1,400 px, at the screens' usual pixel ratios: the picture never lays out wider than the
window (the page never scrolls sideways), and the variant the browser took is not enlarged to fill it (its width, the
``w`` of its srcset entry, at least the laid-out width times the pixel ratio, or the largest there is). The snippet as
it was, without its CSS, laid out 1,024 CSS px wide at 390 px and stretched the 512-px variant twice over.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from browser_helpers import needs_chromium
from conftest import API
from devtools.browser_page import filled, snippet

pytestmark = needs_chromium


def widths(srcset: str) -> dict[str, int]:
    """Each link of a srcset and its ``w``."""
    found = {}
    for entry in srcset.split(","):
        url, width = entry.split()
        found[url] = int(width.removesuffix("w"))
    return found


@pytest.fixture(scope="module")
def stored(stack, simulator) -> Iterator[dict]:
    """A stored 1024-px JPEG, as BFL makes them (the simulator's scenes), read as a page's server reads it."""
    api = API(stack.base_url)
    simulator.settings(scene_images=True, image_format="jpeg")
    try:
        job = api.wait_for(api.submit("a lighthouse at dawn, for a page of its own")["id"], "stored")
    finally:
        simulator.reset()
    assert job["image"]["width"] == 1024 and job["image"]["srcset"], job["image"]
    yield job


@pytest.mark.parametrize("width, ratio", [(390, 1), (390, 3), (1400, 1), (1400, 2)],
                         ids=["390px-1x", "390px-3x", "1400px-1x", "1400px-2x"])
def test_the_guides_img_snippet_fits_the_window_and_takes_a_variant_it_need_not_enlarge(chromium, stored, width, ratio):
    context = chromium.new_context(viewport={"width": width, "height": 900}, device_scale_factor=ratio)
    try:
        page = context.new_page()
        page.set_content("<!doctype html><html><head><meta name='viewport' content='width=device-width'></head>"
                         f"<body>{filled(snippet(), stored)}</body></html>")
        page.wait_for_function("() => { const i = document.querySelector('img'); return i.complete && i.naturalWidth; }",
                               timeout=15_000)
        shown = page.evaluate("""() => { const img = document.querySelector('img');
          return {laid: img.getBoundingClientRect().width, src: img.currentSrc, ratio: devicePixelRatio,
                  window: document.documentElement.clientWidth, page: document.documentElement.scrollWidth}; }""")
    finally:
        context.close()
    assert shown["ratio"] == ratio
    assert shown["laid"] <= shown["window"] and shown["page"] <= shown["window"], shown
    offered = widths(stored["image"]["srcset"])
    taken = offered[shown["src"]]
    assert taken >= shown["laid"] * ratio or taken == max(offered.values()), (taken, shown)
