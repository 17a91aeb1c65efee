"""Charts drawn on the server as inline SVG: stacked bars, lines with gaps, and gauges.

Pure functions from numbers to geometry, and from geometry to markup. Colours come from CSS classes
(``dashboard.css``), never from style attributes, so the charts live under the dashboard's strict
Content-Security-Policy, need no script and no library, and look the same offline.

A chart has no view box, which would scale the whole picture, text included (3 px high on a phone): laid out across in
per cent of its width and down in pixels, it takes the width of any window while its text keeps the stylesheet's size.
The value axis' labels sit left of the chart's box, in the margin the stylesheet leaves it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from markupsafe import Markup, escape


@dataclass(frozen=True)
class Scale:
    """A value axis from 0 to ``top``, with gridlines at ``ticks``."""

    top: float
    ticks: tuple[float, ...]


@dataclass(frozen=True)
class Box:
    """The plot area of a chart: across in per cent of the chart's width, down in pixels."""

    left: float
    top: float
    width: float
    height: float

    @property
    def bottom(self) -> float:
        """The y of the box's lower edge (SVG's y grows downwards)."""
        return self.top + self.height


@dataclass(frozen=True)
class Series:
    """One kind of value: its key in the data, its legend label, and its CSS class."""

    key: str
    label: str
    css: str


@dataclass(frozen=True)
class Column:
    """One period's values: ``key`` identifies it, ``label`` is shown under it ('' for none), ``title`` on hover;
    a ``minor`` label is left out in a narrow window, where there is room for half of them."""

    key: str
    label: str
    title: str
    values: Mapping[str, float | None]
    minor: bool = False


@dataclass(frozen=True)
class Rect:
    """A bar segment in the plot's units, and the value it stands for."""

    series: str
    x: float
    y: float
    width: float
    height: float
    value: float


def nice_scale(highest: float, *, whole: bool = False) -> Scale:
    """An axis from 0 to at least ``highest`` in about four round steps (1, 2 or 5 × 10ⁿ; whole numbers
    only if ``whole``); an empty chart still gets an axis up to one step."""
    raw = max(highest, 0) / 4
    if raw <= 0:
        step = 1.0
    else:
        power = 10 ** math.floor(math.log10(raw))
        step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))
    if whole:
        step = max(1.0, math.ceil(step))
    count = max(1, math.ceil(highest / step - 1e-9)) if highest > 0 else 1
    ticks = tuple(round(step * n, 10) for n in range(count + 1))
    return Scale(ticks[-1], ticks)


def y_of(value: float, scale: Scale, plot: Box) -> float:
    """Where ``value`` sits on the plot's vertical axis (0 at its bottom, ``scale.top`` at its top)."""
    return plot.bottom - plot.height * (value / scale.top)


def slots(count: int, plot: Box, *, gap: float = 0.25) -> list[tuple[float, float]]:
    """The left edge and width of ``count`` evenly spaced bars, a ``gap`` fraction of each slot left empty."""
    if count == 0:
        return []
    slot = plot.width / count
    return [(plot.left + slot * n + slot * gap / 2, slot * (1 - gap)) for n in range(count)]


def stacked(columns: Sequence[Column], series: Sequence[Series], scale: Scale, plot: Box) -> list[list[Rect]]:
    """Each column's bar, one segment per series with a value above 0, stacked bottom-up in ``series`` order."""
    bars = []
    for column, (left, width) in zip(columns, slots(len(columns), plot), strict=False):
        segments, base = [], 0.0
        for kind in series:
            value = column.values.get(kind.key) or 0
            if value <= 0:
                continue
            bottom, top = y_of(base, scale, plot), y_of(base + value, scale, plot)
            segments.append(Rect(kind.key, left, top, width, bottom - top, value))
            base += value
        bars.append(segments)
    return bars


def line_points(columns: Sequence[Column], key: str, scale: Scale, plot: Box) -> list[list[tuple[float, float]]]:
    """The ``key`` values as points at the middle of each column's slot, in runs broken where a value is None."""
    runs: list[list[tuple[float, float]]] = [[]]
    for column, (left, width) in zip(columns, slots(len(columns), plot, gap=0), strict=False):
        value = column.values.get(key)
        if value is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((left + width / 2, y_of(value, scale, plot)))
    return [run for run in runs if run]


def gauge(used: float, limit: float, width: float) -> float:
    """The filled width of a gauge ``width`` long for ``used`` out of ``limit`` (full when over it)."""
    if limit <= 0:
        return width if used > 0 else 0.0
    return width * min(1.0, max(0.0, used / limit))


# --- markup ----------------------------------------------------------------------------------------

def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _pc(value: float) -> str:
    """A position across the chart: per cent of its width."""
    return f"{_n(value)}%"


def _tag(name: str, attrs: Mapping[str, object], *children: str) -> str:
    text = " ".join(f'{key.rstrip("_").replace("_", "-")}="{escape(_n(value) if isinstance(value, float) else value)}"'
                    for key, value in attrs.items() if value is not None)
    inner = "".join(children)
    opening = f"{name} {text}" if text else name
    return f"<{opening}>{inner}</{name}>" if inner or name not in ("rect", "line", "circle", "polyline") \
        else f"<{opening}/>"


def _plot(height: float) -> Box:
    """The plot area of a chart ``height`` px high: the chart's whole width, room for the period labels below."""
    return Box(0, 12, 100, height - 40)


def _frame(height: float, label: str, scale: Scale, plot: Box, columns: Sequence[Column],
           tick_text: Callable[[float], str], body: list[str]) -> Markup:
    parts = []
    for tick in scale.ticks:
        y = y_of(tick, scale, plot)
        parts.append(_tag("line", {"class_": "grid", "x1": _pc(plot.left), "x2": _pc(plot.left + plot.width),
                                   "y1": y, "y2": y}))
        # In the margin left of the chart's box, 6 px from it.
        parts.append(_tag("text", {"class_": "tick", "x": -6.0, "y": y + 4, "text_anchor": "end"},
                          str(escape(tick_text(tick)))))
    for column, (left, slot) in zip(columns, slots(len(columns), plot, gap=0), strict=False):
        if column.label:
            parts.append(_tag("text", {"class_": "tick minor" if column.minor else "tick", "x": _pc(left + slot / 2),
                                       "y": plot.bottom + 20, "text_anchor": "middle"}, str(escape(column.label))))
    parts.extend(body)
    parts.append(_tag("line", {"class_": "axis", "x1": _pc(plot.left), "x2": _pc(plot.left + plot.width),
                               "y1": plot.bottom, "y2": plot.bottom}))
    return Markup(_tag("svg", {"class_": "chart", "height": _n(height), "role": "img", "aria_label": label,
                               "xmlns": "http://www.w3.org/2000/svg"}, *parts))


def bar_chart(columns: Sequence[Column], series: Sequence[Series], *, label: str, height: float = 230,
              whole: bool = True, tick_text: Callable[[float], str] = lambda v: _n(v),
              marker: str | None = None) -> Markup:
    """Stacked bars, one per column, as an ``<svg>``; ``marker``: a series drawn as a tick across each bar
    (a count beside the stack rather than part of it)."""
    plot = _plot(height)
    highest = max([sum(c.values.get(s.key) or 0 for s in series) for c in columns]
                  + [c.values.get(marker) or 0 for c in columns if marker], default=0)
    scale = nice_scale(highest, whole=whole)
    body = []
    for column, segments, (left, slot) in zip(columns, stacked(columns, series, scale, plot),
                                               slots(len(columns), plot, gap=0), strict=False):
        total = sum(s.value for s in segments)
        parts = [_tag("title", {}, str(escape(column.title)))]
        # A transparent slot-wide rect, so the whole column shows the title on hover, empty or not.
        parts.append(_tag("rect", {"class_": "hover", "x": _pc(left), "y": plot.top, "width": _pc(slot),
                                   "height": plot.height}))
        parts += [_tag("rect", {"class_": f"seg {next(s.css for s in series if s.key == r.series)}",
                                "data_series": r.series, "data_value": _n(r.value), "x": _pc(r.x), "y": r.y,
                                "width": _pc(r.width), "height": r.height}) for r in segments]
        value = column.values.get(marker) if marker else None
        if value:
            y = y_of(value, scale, plot)
            parts.append(_tag("line", {"class_": "marker", "data_value": _n(value), "x1": _pc(left + slot * 0.05),
                                       "x2": _pc(left + slot * 0.95), "y1": y, "y2": y}))
        body.append(_tag("g", {"class_": "col", "data_key": column.key, "data_total": _n(total)}, *parts))
    return _frame(height, label, scale, plot, columns, tick_text, body)


def line_chart(columns: Sequence[Column], series: Sequence[Series], *, label: str, height: float = 230,
               tick_text: Callable[[float], str] = lambda v: _n(v)) -> Markup:
    """One line per series across the columns, broken where a value is missing, a dot at every value. A line is
    drawn as its segments: a polyline's points cannot be given in per cent."""
    plot = _plot(height)
    highest = max((c.values.get(s.key) or 0 for c in columns for s in series), default=0)
    scale = nice_scale(highest)
    body = []
    for kind in series:
        runs = line_points(columns, kind.key, scale, plot)
        parts = [_tag("line", {"class_": f"line {kind.css}", "x1": _pc(x1), "y1": y1, "x2": _pc(x2), "y2": y2})
                 for run in runs for (x1, y1), (x2, y2) in zip(run, run[1:], strict=False)]
        parts += [_tag("circle", {"class_": f"dot {kind.css}", "cx": _pc(x), "cy": y, "r": 3.5})
                  for run in runs for x, y in run]
        body.append(_tag("g", {"class_": "series", "data_series": kind.key}, *parts))
    for column, (left, slot) in zip(columns, slots(len(columns), plot, gap=0), strict=False):
        body.append(_tag("rect", {"class_": "hover", "x": _pc(left), "y": plot.top, "width": _pc(slot),
                                  "height": plot.height}, _tag("title", {}, str(escape(column.title)))))
    return _frame(height, label, scale, plot, columns, tick_text, body)


def gauge_bar(used: float, limit: float, *, label: str, width: float = 240, height: float = 14) -> Markup:
    """A horizontal gauge: ``used`` filled out of a track that stands for ``limit``."""
    filled = gauge(used, limit, width)
    state = "full" if limit > 0 and used >= limit else "room"
    return Markup(_tag("svg", {"class_": "gauge", "viewBox": f"0 0 {_n(width)} {_n(height)}", "role": "img",
                               "aria_label": label, "xmlns": "http://www.w3.org/2000/svg"},
                       _tag("rect", {"class_": "track", "x": 0.0, "y": 0.0, "width": float(width),
                                     "height": float(height), "rx": 3}),
                       _tag("rect", {"class_": f"fill {state}", "data_value": _n(used), "x": 0.0, "y": 0.0,
                                     "width": filled, "height": float(height), "rx": 3})))
