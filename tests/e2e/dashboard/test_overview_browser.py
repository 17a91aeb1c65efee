"""The overview in a real browser: headless Chromium draws the charts, and the screenshot shows the numbers.

Its own web app and Redis database (``local_app``), so the counters are only this test's: real jobs
taken through the simulator now, and jobs counted by the counting rules (``accounting.on_submitted`` and
``accounting.on_end``) at known earlier hours and days. Foreign requests are blocked as in
``test_dashboard_browser``: the page works offline.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from PIL import Image
from playwright.sync_api import expect

from browser_helpers import Tab, needs_chromium, sign_in
from credit_helpers import finish_job, submit_job
from devtools.processes import ROOT
from fluxhook.bfl.reports import Cost
from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.credits import accounting, reports
from receiver.dashboard_overview import OUTCOMES

pytestmark = needs_chromium

DB = 5
# The README's screenshot, remade here under `make screenshots` (FLUXHOOK_SCREENSHOTS=1).
SCREENSHOT_COPY = ROOT / "docs" / "overview.png"
HOUR = 3600


@pytest.fixture()
def site(local_app, make_services, tmp_path):
    """The dashboard's app on a database of its own, and in-process services on that database."""
    storage = f"file://{tmp_path / 'images'}"
    api, _ = local_app(DB, STORAGE_URL=storage)
    return api.base_url, make_services(DB, STORAGE_URL=storage)


@pytest.fixture()
def tab(chromium, site):
    context = chromium.new_context(base_url=site[0], viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    yield Tab(context.new_page(), site[0])
    context.close()


def count_at(svc, when: float, outcomes: dict[str, int], *, model: str = "flux-2-pro", credits: float = 1.0,
             latency: float = 0.5) -> None:
    """Jobs submitted a minute before ``when`` and ended at ``when``, counted as their transitions count them."""
    for status, times in outcomes.items():
        for _ in range(times):
            fields, effects = accounting.on_submitted(model, Cost(credits, 0.0, 1.0), 0, when - 60)
            job = Job(id=new_job_id(when), status=st.READY, model=model, usage_day=fields["usage_day"],
                      cost_credits=credits, counted_credits=fields["counted_credits"],
                      counted_spend=fields["counted_spend"])
            effects += accounting.on_end(job, status, when, latency=latency if status == st.STORED else None)
            svc.store.effects.apply(effects)


def colours(page, classes) -> dict[tuple[int, int, int], str]:
    """The RGB fill the stylesheet gives each class, as drawn."""
    found = {}
    for css in classes:
        rgb = page.evaluate("""css => { const r = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
            r.setAttribute('class', css); document.querySelector('svg.chart').appendChild(r);
            const fill = getComputedStyle(r).fill; r.remove(); return fill; }""", css)
        found[tuple(int(n) for n in rgb[rgb.index("(") + 1:-1].split(","))] = css
    return found


def drawn_columns(page, chart: str, palette) -> list[dict]:
    """Each column of ``chart``: its key and total, its bar's box from the layout, and from the screenshot
    the pixels of bar colour in the column at the bar's centre, bottom to top, and how tall a run they span."""
    svg = page.locator(f"{chart} svg.chart")
    shot = Image.open(io.BytesIO(svg.screenshot())).convert("RGB")
    origin = svg.bounding_box()
    columns = []
    for group in svg.locator("g.col").all():
        boxes = [seg.bounding_box() for seg in group.locator("rect.seg").all()]
        slot = group.locator("rect.hover").bounding_box()
        x = round(slot["x"] + slot["width"] / 2 - origin["x"])
        rows = [(y, palette[pixel]) for y in range(shot.height - 1, -1, -1)
                if (pixel := shot.getpixel((x, y))) in palette]
        columns.append({"key": group.get_attribute("data-key"), "total": float(group.get_attribute("data-total")),
                        "height": sum(b["height"] for b in boxes), "pixels": [css for _, css in rows],
                        "span": rows[0][0] - rows[-1][0] + 1 if rows else 0})
    return columns


def test_the_overview_draws_what_the_counters_say(tab, site, sim, tmp_path):
    base_url, svc = site
    page = tab.page
    now = time.time()
    this_hour = math.floor(now / HOUR) * HOUR
    # Real jobs through the simulator, now; one left running at BFL, in flight.
    for n in range(3):
        assert finish_job(svc, sim, submit_job(svc, f"on the overview {n}")).status == st.STORED
    submit_job(svc, "[pending] in flight while the overview is open")
    # Earlier hours, each in the middle of its hour: 5 hours ago is the busiest.
    count_at(svc, this_hour - 5 * HOUR + 1800, {st.STORED: 7, st.FAILED: 2}, latency=0.7)
    count_at(svc, this_hour - 9 * HOUR + 1800, {st.STORED: 3, st.MODERATED: 1}, latency=4.0)
    count_at(svc, this_hour - 14 * HOUR + 1800, {st.STORED: 1, st.EXPIRED: 2}, latency=1.5)
    # Earlier days at noon: 3 days ago the busiest day and the most credits, by another model.
    today_noon = math.floor(now / 86400) * 86400 + 12 * HOUR
    count_at(svc, today_noon - 3 * 86400, {st.STORED: 24, st.FAILED: 1}, model="flux-dev", credits=2.0)
    count_at(svc, today_noon - 12 * 86400, {st.STORED: 5}, model="flux-kontext-max", credits=4.0)
    # The balance as a worker keeps it, read from BFL three minutes ago.
    svc.store.usage.set_balance(1_000_000.0, now - 180, 3600, account=svc.config.accounts[0])

    sign_in(page, goto="/")
    expect(page).to_have_url(base_url + "/")  # the overview is the first page after sign-in
    expect(page.locator("h1")).to_have_text("Overview")
    busiest, quieter, mixed = (accounting.utc_hour(this_hour - n * HOUR) for n in (5, 9, 14))

    # The figures over the 24 hours, as counted.
    expect(page.locator('[data-figure="stored"]')).to_have_text("14")  # 7 + 3 + 1 + the 3 real ones
    expect(page.locator('[data-figure="ended_badly"]')).to_have_text("5")  # 2 failed, 1 moderated, 2 expired
    expect(page.locator('[data-figure="submitted"]')).to_have_text("20")
    expect(page.locator('#pools tr[data-pool="default"] [data-field="in_flight"]')).to_have_text("1")
    # Which models "default" holds, said in words; the balance as `fluxhook doctor` prints it, with its age.
    expect(page.locator('#pools tr[data-pool="default"] [data-field="label"]')).to_have_text("Other models")
    expect(page.locator('[data-field="balance"]')).to_contain_text("1,000,000 credits")
    expect(page.locator('[data-field="balance"]')).to_contain_text("read 3 min ago from BFL")

    # The jobs chart: 24 hourly columns; the tallest bar, by layout and by pixels, is the busiest hour.
    palette = colours(page, [s.css for s in OUTCOMES])
    shot = tmp_path / "overview.png"
    page.screenshot(path=str(shot), full_page=True)
    columns = drawn_columns(page, "#jobs-chart", palette)
    # The 24 hours up to the page's own (the test's, unless an hour began in between).
    assert [c["key"] for c in columns] in (reports.hours_before(now, 24), reports.hours_before(time.time(), 24))
    by_key = {c["key"]: c for c in columns}
    assert (by_key[busiest]["total"], by_key[quieter]["total"]) == (9, 4)
    assert max(columns, key=lambda c: c["height"])["key"] == busiest
    assert max(columns, key=lambda c: len(c["pixels"]))["key"] == busiest
    # Heights in proportion to the counts, in the layout and in the pixels (within a pixel or two).
    assert by_key[busiest]["height"] / by_key[quieter]["height"] == pytest.approx(9 / 4, rel=0.02)
    for column in columns:
        # Edges fall between pixels, and the submitted tick across a bar's top may cover one or two.
        assert abs(column["span"] - column["height"]) <= 3, column["key"]
    # Stacked bottom-up as the legend reads: the stored jobs' green below the failed ones' red, 7 to 2.
    stack = Counter(by_key[busiest]["pixels"])
    assert by_key[busiest]["pixels"][0] == "s-stored" and by_key[busiest]["pixels"][-1] == "s-failed"
    assert stack["s-stored"] / stack["s-failed"] == pytest.approx(7 / 2, rel=0.08)
    assert Counter(by_key[mixed]["pixels"]).keys() == {"s-stored", "s-expired"}
    assert all(not c["pixels"] for c in columns if c["total"] == 0)

    # The latency lines: a dot for every hour that stored a job; p95 above p50 where the stores took 4 s.
    dots = page.locator('#latency-chart g[data-series="latency_p50"] circle')
    expect(dots).to_have_count(4)
    p95 = page.locator('#latency-chart g[data-series="latency_p95"] circle')
    highest = min(range(4), key=lambda n: p95.nth(n).bounding_box()["y"])
    assert highest == 1  # the second hour with stores, 9 hours ago: 4 s

    if os.environ.get("FLUXHOOK_SCREENSHOTS") == "1":
        shutil.copyfile(shot, SCREENSHOT_COPY)

    # 30 days, day by day: the busiest day and the day of the most credits is 3 days ago.
    page.click('a[data-range="30d"]')
    expect(page).to_have_url(base_url + "/?range=30d")
    today = datetime.fromtimestamp(now, timezone.utc).date()
    days = reports.days_between(today - timedelta(days=29), today)
    columns = drawn_columns(page, "#jobs-chart", palette)
    assert [c["key"] for c in columns] == days
    assert max(columns, key=lambda c: len(c["pixels"]))["key"] == days[-4]
    assert max(columns, key=lambda c: c["total"])["total"] == 25
    models = colours(page, ["m0", "m1", "m2"])
    credits = drawn_columns(page, "#credits-chart", models)
    assert [c["key"] for c in credits] == days
    assert max(credits, key=lambda c: len(c["pixels"]))["key"] == days[-4]
    assert {c["key"]: c["total"] for c in credits}[days[-13]] == 20
    # Models in name order take the palette's colours: flux-2-pro, flux-dev, flux-kontext-max.
    assert set(credits[-4]["pixels"]) == {"m1"} and set(credits[-13]["pixels"]) == {"m2"}
    expect(page.locator("#credits-chart .legend")).to_contain_text("flux-dev")
    page.screenshot(path=str(tmp_path / "overview-30d.png"), full_page=True)
    tab.clean()
