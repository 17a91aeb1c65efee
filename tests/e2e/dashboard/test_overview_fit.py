"""The overview's charts read well in headless Chromium, at a phone's 390 × 844 and a desktop's 1400 × 900,
over 24 hours and 30 days: measured from the layout, not by eye.

Each chart's axis labels are drawn at least 10 px high (the jobs chart was once scaled down as one picture,
its labels about 3 px high at 390 px), none overlaps another or leaves the panel, each axis has its labels,
and the current hour (or today), the last column, has a label under it (its bar once sat past the last one).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from browser_helpers import needs_chromium, sign_in
from layout_checks import overflow

pytestmark = needs_chromium

SIZES = [pytest.param(390, 844, id="390x844"), pytest.param(1400, 900, id="1400x900")]
CHARTS = ("#jobs-chart", "#latency-chart", "#credits-chart")

# A chart's drawn text (what it says, its box, its size as drawn: font size times the scale the chart is drawn
# at), the x axis' line, the panel around it, and the middle of each column's slot, left to right.
CHART = """chart => {
  const svg = document.querySelector(chart + ' svg.chart');
  const box = r => ({left: r.left, right: r.right, top: r.top, bottom: r.bottom});
  const labels = [...svg.querySelectorAll('text')].filter(t => t.checkVisibility() && t.getClientRects().length)
    .map(t => ({text: t.textContent, ...box(t.getBoundingClientRect()),
                size: parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a}));
  const slots = [...svg.querySelectorAll('rect.hover')].map(r => { const b = r.getBoundingClientRect();
    return b.left + b.width / 2; });
  return {labels, slots, axis: box(svg.querySelector('line.axis').getBoundingClientRect()),
          panel: box(svg.closest('section').getBoundingClientRect()), window: document.documentElement.clientWidth};
}"""




def faults(chart: str, drawn: dict) -> list[str]:
    """What is wrong with one chart's labels, in words."""
    found = []
    labels = drawn["labels"]
    under = [t for t in labels if t["top"] >= drawn["axis"]["bottom"] - 1]  # under the x axis: the periods
    beside = [t for t in labels if t not in under]  # the values, left of the plot
    if len(under) < 2 or len(beside) < 2:
        found.append(f"{chart}: {len(under)} period labels and {len(beside)} value labels")
    for n, label in enumerate(labels):
        if label["size"] < 10:
            found.append(f"{chart}: {label['text']!r} is {label['size']:.1f} px high")
        if label["left"] < max(0, drawn["panel"]["left"]) or label["right"] > min(drawn["window"], drawn["panel"]["right"]):
            found.append(f"{chart}: {label['text']!r} leaves its panel")
        for other in labels[n + 1:]:
            if (min(label["right"], other["right"]) - max(label["left"], other["left"]) > 0
                    and min(label["bottom"], other["bottom"]) - max(label["top"], other["top"]) > 0):
                found.append(f"{chart}: {label['text']!r} and {other['text']!r} overlap")
    last = drawn["slots"][-1]
    if not any(t["left"] - 1 <= last <= t["right"] + 1 for t in under):
        found.append(f"{chart}: the last column (now) has no label under it")
    return found


@pytest.mark.parametrize("span", ["24h", "30d"])
@pytest.mark.parametrize("width, height", SIZES)
def test_the_overview_charts_read_well(open_tab, api, width, height, span, tmp_path):
    api.wait_for(api.submit("a bar in the current hour")["id"], "stored")
    tab = open_tab(width, height)
    page = tab.page
    sign_in(page, goto=f"/?range={span}")
    expect(page.locator("h1")).to_have_text("Overview")
    page.wait_for_load_state()  # the stylesheet applied: what is measured is the page as shown
    found = [fault for chart in CHARTS for fault in faults(chart, page.evaluate(CHART, chart))]
    assert not found, "\n".join(found)
    scroll, client = overflow(page)
    assert scroll <= client, f"the overview is {scroll} px wide in a {client} px window"
    page.screenshot(path=str(tmp_path / f"overview-{span}-{width}.png"), full_page=True)
    tab.clean()
