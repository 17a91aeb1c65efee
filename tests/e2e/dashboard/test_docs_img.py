"""The API guide's `<img srcset sizes>` snippet (docs/api.md, "Ready for <img>"), read from the guide itself so the two
cannot drift, filled with a stored job's real links and rendered in headless Chromium at a phone's 390 px and a
desktop's 1,400 px, at the screens' usual pixel ratios: the picture never lays out wider than the window (the page
never scrolls sideways), and the variant the browser took is not enlarged to fill it (its width, the ``w`` of its
srcset entry, at least the laid-out width times the pixel ratio, or the largest there is). The snippet as it was,
without its CSS, laid out 1,024 CSS px wide at 390 px and stretched the 512-px variant twice over.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest

from browser_helpers import needs_chromium
from conftest import API
from devtools.processes import ROOT

pytestmark = needs_chromium

GUIDE = ROOT / "docs" / "api.md"


def snippet() -> str:
    """The guide's HTML example that takes ``job.image.srcset`` as it is."""
    blocks = re.findall(r"```html\n(.*?)```", GUIDE.read_text(), re.S)
    [found] = [block for block in blocks if "{{ job.image.srcset }}" in block]
    return found


def filled(template: str, job: dict) -> str:
    """The snippet as a template engine that escapes attributes (Jinja's, Django's) fills it from the job's JSON."""
    values = {"job.image.url": job["image"]["url"], "job.image.srcset": job["image"]["srcset"],
              "job.image.width": job["image"]["width"], "job.image.height": job["image"]["height"],
              "job.prompt": job["prompt"]}

    def value(match: re.Match) -> str:
        return html.escape(str(values[match.group(1)]), quote=True)

    page = re.sub(r"\{\{ ([\w.]+) \}\}", value, template)
    assert "{{" not in page, page
    return page


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
