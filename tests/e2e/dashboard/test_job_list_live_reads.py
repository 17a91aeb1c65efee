"""The job list under a busy stream of events, in headless Chromium: while jobs are posted every 50 ms (each one an
event, and another as BFL takes it), the page still reads its rows again during the burst (a stream that never
pauses must not put the read off for ever) and at most about once a second (each read runs the list's filters over
every job), and the last job posted shows once the burst is over.
"""

from __future__ import annotations

import threading
import time
import uuid

from playwright.sync_api import expect

from browser_helpers import needs_chromium, row, sign_in

pytestmark = needs_chromium

BURST_SECONDS = 4.0
PACE = 0.05


def test_a_busy_stream_brings_reads_during_it_and_at_most_about_one_a_second(open_tab, api):
    tag = f"burst{uuid.uuid4().hex[:8]}"
    tab = open_tab(1400, 900)
    page = tab.page
    sign_in(page)
    expect(page.locator("#live")).to_have_text("live")
    reads: list[float] = []
    page.on("request", lambda request: reads.append(time.monotonic()) if "/live/jobs" in request.url else None)

    posted: list[dict] = []
    began = time.monotonic()

    def post_jobs() -> None:
        # At least 20 however slow the host: the burst is measured by its own length below.
        while time.monotonic() - began < BURST_SECONDS or len(posted) < 20:
            posted.append(api.submit(f"{tag} {len(posted)}"))
            time.sleep(PACE)

    poster = threading.Thread(target=post_jobs)
    poster.start()
    while poster.is_alive():
        page.wait_for_timeout(100)  # lets the page's own events and timers run while the burst goes on
    ended = time.monotonic()
    expect(row(page, posted[-1]["id"])).to_be_visible(timeout=10_000)

    during = [t for t in reads if began <= t <= ended]
    assert len(posted) >= 20, f"only {len(posted)} jobs posted in {BURST_SECONDS} s: not a busy stream"
    assert len(during) >= 2, f"{len(during)} reads in a {ended - began:.1f} s burst of {len(posted)} jobs"
    assert len(during) <= (ended - began) / 1.0 + 2, (
        f"{len(during)} reads in {ended - began:.1f} s: more than one a second")
    tab.clean()
