"""The Deliveries page's tables (receiver/templates/dashboard/deliveries.html) as the stylesheet lays them out: each
header cell padded and ruled, so that the header of a table with no rows reads as columns, not as one run of words
("Message App Event Target Attempts")."""

from __future__ import annotations

import re

from devtools.processes import ROOT

CSS = ROOT / "receiver" / "static" / "dashboard.css"
TEMPLATE = ROOT / "receiver" / "templates" / "dashboard" / "deliveries.html"


def _declarations(selector: str) -> dict[str, str]:
    """Every declaration of the stylesheet's rules that name ``selector`` exactly (media queries' too)."""
    text = re.sub(r"/\*.*?\*/", "", CSS.read_text(), flags=re.S)
    found: dict[str, str] = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", text):
        if selector in (s.strip() for s in selectors.split(",")):
            found.update((name.strip(), value.strip()) for name, _, value in
                         (d.partition(":") for d in body.split(";") if d.strip()))
    return found


def _pixels(value: str) -> list[float]:
    return [float(n) for n in re.findall(r"(\d+(?:\.\d+)?)px", value)]


def test_the_pages_tables_are_the_ones_the_stylesheet_styles():
    page = TEMPLATE.read_text()
    assert '<table class="deliveries"' in page
    assert re.search(r"<thead><tr>(<th>[^<]*</th>){5,}", page)


def test_each_header_cell_is_set_apart_from_the_next():
    header = _declarations("table.deliveries th")
    assert _pixels(header.get("padding", "")) and min(_pixels(header["padding"])) >= 6, header
    assert header.get("text-align") == "left" and "border-bottom" in header
    assert _declarations("table.deliveries").get("border-collapse") == "collapse"
    cells = _declarations("table.deliveries td")
    assert _pixels(cells.get("padding", "")) and min(_pixels(cells["padding"])) >= 6, cells
