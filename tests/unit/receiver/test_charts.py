"""The server-drawn charts (``receiver.charts``): scales, bar and line geometry, and the SVG they make."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from receiver import charts
from receiver.charts import Box, Column, Scale, Series

PLOT = Box(left=10, top=0, width=100, height=50)
SVG = "{http://www.w3.org/2000/svg}"
KINDS = (Series("stored", "stored", "s-stored"), Series("failed", "failed", "s-failed"))


@pytest.mark.parametrize("highest, whole, scale", [
    (0, True, Scale(1, (0, 1))),
    (3, True, Scale(3, (0, 1, 2, 3))),
    (9, True, Scale(10, (0, 5, 10))),
    (9, False, Scale(10, (0, 5, 10))),
    (0.7, True, Scale(1, (0, 1))),
    (0.7, False, Scale(0.8, (0, 0.2, 0.4, 0.6, 0.8))),
    (50, False, Scale(60, (0, 20, 40, 60))),
    (4.2, False, Scale(6, (0, 2, 4, 6))),
    (1234, True, Scale(1500, (0, 500, 1000, 1500))),
])
def test_a_scale_reaches_the_highest_value_in_round_steps(highest, whole, scale):
    assert charts.nice_scale(highest, whole=whole) == scale


def test_the_scale_never_falls_short_of_the_value():
    for highest in (0.01, 0.3, 1, 7, 13, 99, 101, 1e6 + 1):
        for whole in (True, False):
            scale = charts.nice_scale(highest, whole=whole)
            assert scale.top >= highest and scale.ticks[0] == 0 and len(scale.ticks) <= 6
            if whole:
                assert all(float(t).is_integer() for t in scale.ticks)


def test_values_sit_on_the_axis_from_bottom_to_top():
    scale = Scale(10, (0, 5, 10))
    assert (charts.y_of(0, scale, PLOT), charts.y_of(5, scale, PLOT), charts.y_of(10, scale, PLOT)) == (50, 25, 0)


def test_slots_share_the_width_with_a_gap_each():
    assert charts.slots(4, PLOT) == [(13.125, 18.75), (38.125, 18.75), (63.125, 18.75), (88.125, 18.75)]
    assert charts.slots(2, PLOT, gap=0) == [(10, 50), (60, 50)]
    assert charts.slots(0, PLOT) == []


def test_bars_stack_bottom_up_in_series_order_and_skip_zeros():
    columns = [Column("a", "", "", {"stored": 6, "failed": 2}), Column("b", "", "", {"failed": 0}),
               Column("c", "", "", {"failed": 4})]
    bars = charts.stacked(columns, KINDS, Scale(10, (0, 10)), PLOT)
    stored, failed = bars[0]
    assert (stored.series, stored.y, stored.height, stored.value) == ("stored", 20, 30, 6)
    assert (failed.series, failed.y, failed.height) == ("failed", 10, 10)  # on top of the stored part
    assert bars[1] == []
    assert [(r.series, r.y, r.height) for r in bars[2]] == [("failed", 30, 20)]
    assert stored.x == failed.x == charts.slots(3, PLOT)[0][0]


def test_a_line_breaks_where_a_value_is_missing():
    columns = [Column(k, "", "", {"p50": v}) for k, v in zip("abcde", (1, 2, None, 4, None), strict=False)]
    runs = charts.line_points(columns, "p50", Scale(4, (0, 4)), PLOT)
    assert runs == [[(20, 37.5), (40, 25)], [(80, 0)]]
    assert charts.line_points(columns[2:3], "p50", Scale(4, (0, 4)), PLOT) == []


@pytest.mark.parametrize("used, limit, filled", [(0, 6, 0), (3, 6, 50), (6, 6, 100), (9, 6, 100), (0, 0, 0), (1, 0, 100)])
def test_a_gauge_fills_its_share_of_the_limit(used, limit, filled):
    assert charts.gauge(used, limit, 100) == filled


def _svg(markup) -> ET.Element:
    return ET.fromstring(str(markup))


def test_the_bar_chart_is_svg_with_a_group_per_column_and_no_style_attribute():
    columns = [Column("2026-11-22T10", "10:00", "10:00: 3 stored <b>", {"stored": 3, "failed": 1, "submitted": 5}),
               Column("2026-11-22T11", "", "11:00: none", {"stored": 0, "submitted": 0})]
    markup = charts.bar_chart(columns, KINDS, label="Jobs & outcomes", marker="submitted", height=200)
    root = _svg(markup)
    assert root.get("height") == "200" and root.get("role") == "img" and root.get("aria-label") == "Jobs & outcomes"
    assert root.get("viewBox") is None  # across in per cent, so the text is never scaled with the chart
    assert "style=" not in markup and "<b>" not in markup  # colours by class only; text escaped
    groups = root.findall(f"{SVG}g")
    assert [(g.get("data-key"), g.get("data-total")) for g in groups] == [("2026-11-22T10", "4"), ("2026-11-22T11", "0")]
    segments = groups[0].findall(f"{SVG}rect[@data-series]")
    assert [(r.get("class"), r.get("data-value")) for r in segments] == [("seg s-stored", "3"), ("seg s-failed", "1")]
    heights = [float(r.get("height")) for r in segments]
    assert heights[0] == pytest.approx(3 * heights[1], abs=0.02)  # drawn to 0.01 of a unit
    assert groups[0].find(f"{SVG}title").text == "10:00: 3 stored <b>"
    # The marker (5 submitted) is above the stack of 4, and the scale reaches it.
    marker = groups[0].find(f"{SVG}line")
    assert float(marker.get("y1")) < float(segments[1].get("y"))
    assert groups[1].find(f"{SVG}line") is None and groups[1].findall(f"{SVG}rect[@data-series]") == []
    labels = [t.text for t in root.findall(f"{SVG}text")]
    assert "10:00" in labels and labels[:4] == ["0", "2", "4", "6"]


def test_the_line_chart_draws_each_run_as_segments_and_a_dot_per_value():
    kinds = (Series("p50", "p50", "s-p50"), Series("p95", "p95", "s-p95"))
    columns = [Column(k, "", k, {"p50": a, "p95": b}) for k, a, b in
               (("a", 0.5, 1.0), ("b", None, None), ("c", 0.4, 2.0), ("d", 0.6, 2.5))]
    root = _svg(charts.line_chart(columns, kinds, label="Latency", tick_text=lambda v: f"{v:g} s"))
    p95 = root.find(f"{SVG}g[@data-series='p95']")
    assert len(p95.findall(f"{SVG}line")) == 1 and len(p95.findall(f"{SVG}circle")) == 3  # runs of 1 and 2 values
    assert [c.get("cx") for c in p95.findall(f"{SVG}circle")] == ["12.5%", "62.5%", "87.5%"]
    assert "3 s" in [t.text for t in root.findall(f"{SVG}text")]  # the axis reaches 2.5 s in round steps


def test_the_gauge_is_svg_whose_fill_tells_when_the_limit_is_reached():
    assert _svg(charts.gauge_bar(2, 6, label="2 of 6")).findall(f"{SVG}rect")[1].get("class") == "fill room"
    full = _svg(charts.gauge_bar(6, 6, label="6 of 6", width=120)).findall(f"{SVG}rect")[1]
    assert (full.get("class"), full.get("width")) == ("fill full", "120")
