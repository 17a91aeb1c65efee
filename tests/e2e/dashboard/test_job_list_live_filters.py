"""The job list's filter form and its live updates together, in headless Chromium at a phone's 390 px and a
desktop's 1400 px: filtered through the form by status, key, account, prompt text and from/to, the list (never
reloaded) takes in a new job that matches every filter, leaves out jobs that miss one (another key's job with the
same words, this key's job with other words), and lets go of a job that stops matching (it ends, the filter asks
for submitted ones). The page keeps to the window at both widths.

How: the page follows every job's events (/live/events) and at each one reads its own filtered rows again
(/live/jobs with the URL's filters), so the server's filter decides what is shown.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from browser_helpers import needs_chromium, row, sign_in
from key_helpers import make_key
from layout_checks import FAULTS, overflow

pytestmark = needs_chromium

SIZES = {390: 844, 1400: 900}


@pytest.mark.parametrize("width", sorted(SIZES))
def test_a_filtered_list_takes_in_only_the_new_jobs_that_match_without_a_reload(open_tab, api, sim, width, tmp_path):
    tag = f"lv{uuid.uuid4().hex[:10]}"
    created, mine = make_key(api, name=f"live-{tag}")
    _, theirs = make_key(api, name=f"other-{tag}")
    first = mine.submit(f"[pending] Lighthouse {tag} at dawn")
    today = datetime.now(timezone.utc).date()

    tab = open_tab(width, SIZES[width])
    page = tab.page
    sign_in(page)
    form = page.locator("form.jobfilters")
    form.locator('select[name="status"]').select_option("submitted")
    form.locator('select[name="key_id"]').select_option(created["id"])
    form.locator('input[name="account"]').fill("default")
    form.locator('input[name="q"]').fill(f"LIGHTHOUSE {tag}")
    form.locator('input[name="from"]').fill(today.isoformat())
    form.locator('input[name="to"]').fill((today + timedelta(days=1)).isoformat())
    form.locator('button[type="submit"]').click()
    expect(page).to_have_url(re.compile(rf"/jobs\?status=submitted&.*q=LIGHTHOUSE\+{tag}"))
    page.wait_for_load_state()
    expect(page.locator("#rows tr")).to_have_count(1)
    expect(row(page, first["id"])).to_be_visible()
    expect(page.locator("#live")).to_have_text("live")
    # The status tabs keep the filters; their counts, which are every job's, are not shown beside a filtered list.
    expect(page.locator("nav.filters [data-count]")).to_have_count(0)
    expect(page.locator('nav.filters a[data-filter="stored"]')).to_have_attribute("href", re.compile(rf"q=LIGHTHOUSE\+{tag}"))
    page.evaluate("window.notReloaded = true")

    # Each misses one filter; the last matches them all.
    other_key = theirs.submit(f"[pending] lighthouse {tag} at dawn")
    other_words = mine.submit(f"[pending] a red fox {tag}")
    matching = mine.submit(f"[pending] a lighthouse {tag} at dusk")
    expect(row(page, matching["id"])).to_be_visible()
    ids = page.locator("#rows tr").evaluate_all("rows => rows.map(r => r.dataset.jobId)")
    assert ids == [matching["id"], first["id"]], (ids, other_key["id"], other_words["id"])

    # Fits the window with the form above a filtered list, nothing in the form cut or overlapping.
    scroll, client = overflow(page)
    assert scroll <= client, f"the list is {scroll} px wide in a {client} px window"
    faults = page.evaluate(FAULTS, ["form.jobfilters", 10])
    assert not faults, f"at {width} px:\n" + "\n".join(faults)
    page.screenshot(path=str(tmp_path / f"filtered-{width}.png"), full_page=True)

    # The first job ends (stored): no longer submitted, it leaves the list, still without a reload.
    sim.complete(first["bfl_id"])
    expect(row(page, first["id"])).to_have_count(0, timeout=20_000)
    expect(page.locator("#rows tr")).to_have_count(1)
    assert page.evaluate("window.notReloaded") is True
    tab.clean()


def test_a_filter_the_server_refuses_shows_its_mistake_and_is_not_followed(open_tab):
    # Followed, the page would ask /live/jobs with the same filter every 2 s and be refused each time, its dot
    # reading "offline" under the form's own explanation.
    tab = open_tab(390, 844)
    page = tab.page
    asked: list[str] = []
    page.on("request", lambda request: "/live/" in request.url and asked.append(request.url))
    sign_in(page, goto="/jobs?from=last+tuesday&q=fox")  # the sign-in form, then straight back to this list
    page.wait_for_load_state()  # the page's script has run (deferred scripts run before the load event)
    expect(page.locator("#filter-problem")).to_contain_text("'from' must be a date")
    expect(page.locator("#live")).to_be_hidden()
    assert page.locator("[data-live]").count() == 0 and asked == []
    tab.clean()
