"""The dashboard's batch pages (docs/api.md "Seen and used") against the session stack, in headless Chromium and as a
signed-in browser's HTTP session: the Batches list (linked from the sections), a finished batch's page with its counts,
cost and a contact sheet of its items' thumbnails in their order (each a link to its job), its items in the job list
and its results as JSON lines and a ZIP; a running batch's page following it without a reload, then canceled from
its button, which says what became of it; a cancel without the session's CSRF token refused, changing nothing;
each key's batch shown with its own key, the list limited to one key on asking; and a batch of more items than a
sheet's page paged through in their order.
"""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
from playwright.sync_api import expect

from browser_helpers import loaded_width, needs_chromium, sign_in
from devtools.processes import wait_until
from key_helpers import make_key

pytestmark = needs_chromium

# What the batch's page shows of its counts: each status's number (read from the page).
COUNTS = ("() => Object.fromEntries([...document.querySelectorAll('#counts [data-count]')]"
          ".map(e => [e.dataset.count, +e.textContent]))")


def make_batch(client, prompts: list[str], **extra) -> dict:
    made = client.post("/v1/batches", json={"model": "flux-2-pro", "items": [
        {"input": {"prompt": p}, "metadata": {"n": i}} for i, p in enumerate(prompts)], **extra})
    assert made.status_code == 202, made.text
    return made.json()


def ended(client, batch_id: str, timeout: float = 60.0) -> dict:
    return wait_until(lambda: (b := client.get(f"/v1/batches/{batch_id}").json())["ended_at"] and b,
                      timeout=timeout, message=f"batch {batch_id} to end")


def items_of(client, batch_id: str) -> list[dict]:
    jobs = client.get("/v1/jobs", params={"batch_id": batch_id, "limit": 100}).json()["jobs"]
    return sorted(jobs, key=lambda job: job["batch_index"])


def test_a_finished_batch_shows_its_counts_cost_and_thumbnails_in_order(tab, api, browser, stack):
    key, app = make_key(api, name="catalog-shop")
    batch = make_batch(app, ["a red mug on oak", "a blue mug on oak [error]", "a green mug on oak"],
                       metadata={"catalog": "mugs"})
    done = ended(app, batch["id"])
    assert done["counts"]["stored"] == 2 and done["counts"]["failed"] == 1
    jobs = items_of(app, batch["id"])
    page = tab.page

    # Signed in onto the Batches page, the batch is listed with its key, progress and counts; its id opens it.
    sign_in(page, goto="/batches")
    expect(page.locator("nav.sections a[aria-current]")).to_have_text("Batches")
    row = page.locator(f'tr[data-batch-id="{batch["id"]}"]')
    expect(row.locator('[data-field="status"]')).to_have_text("ended")
    expect(row.locator('[data-field="key"]')).to_have_text("catalog-shop")
    expect(row.locator('[data-field="done"]')).to_have_text("3 of 3 ended")
    expect(row.locator('[data-field="counts"]')).to_have_text("2 stored · 1 failed")
    row.locator('a[data-field="id"]').click()
    expect(page).to_have_url(re.compile(f"/batches/{batch['id']}$"))

    # Its counts, progress, cost so far, times and metadata.
    expect(page.locator("#batch-status")).to_have_text("ended")
    assert page.evaluate(COUNTS) == {**{s: 0 for s in done["counts"] if s != "total"}, "stored": 2, "failed": 1}
    expect(page.locator('[data-field="done"]')).to_have_text("3 of 3 ended")
    expect(page.locator('[data-field="progress"]')).to_have_text("100 %")
    assert page.locator("#batch-progress").evaluate("bar => bar.value") == 100
    expect(page.locator('[data-field="cost"]')).to_have_text(f"{done['cost']['credits']:g} credits")
    expect(page.locator('[data-field="ended"]')).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$"))
    expect(page.locator("#app-key a")).to_have_text("catalog-shop")
    expect(page.locator("#app-key a")).to_have_attribute("href", f"/batches?key_id={key['id']}")
    expect(page.locator("pre.metadata")).to_contain_text('"catalog": "mugs"')
    expect(page.locator("#cancel")).to_be_hidden()  # nothing left to cancel

    # The contact sheet: every item in its order, each a link to its job; the stored ones' thumbnails (the job
    # list's small previews, never the image itself), the failed one its status.
    tiles = page.locator("#sheet li")
    expect(tiles).to_have_count(3)
    assert tiles.evaluate_all("lis => lis.map(li => li.dataset.jobId)") == [job["id"] for job in jobs]
    expect(page.locator("#sheet .index")).to_have_text(["#0", "#1", "#2"])
    expect(page.locator("#sheet .meta")).to_have_text(["0", "1", "2"])  # each item's metadata "n", named above them
    expect(page.locator("#sheet-range strong")).to_have_text("n")
    for job, tile in zip(jobs, tiles.all(), strict=True):
        expect(tile.locator("a")).to_have_attribute("href", f"/jobs/{job['id']}")
    thumbs = page.locator("#sheet li[data-status=stored] img")
    expect(thumbs).to_have_count(2)  # made just after each image is stored: the open page shows them as they come
    for index in (0, 2):
        image = tiles.nth(index).locator("img")
        expect(image).to_have_attribute("src", f"/jobs/{jobs[index]['id']}/thumbnail")
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
        assert loaded_width(image) == jobs[index]["image"]["width"]  # the simulator's images are under 256 px
    expect(tiles.nth(1).locator(".state")).to_have_text("failed")
    sources = page.evaluate("performance.getEntriesByType('resource').map(r => new URL(r.name))"
                            ".map(u => u.pathname + '?' + u.searchParams.get('w'))")
    # No full image was loaded: each tile took the variant its size needs, its original's width when smaller.
    images = [s for s in sources if s.startswith("/v1/jobs/")]
    assert images and all(s.endswith(f"?{jobs[0]['image']['width']}") for s in images), sources
    expect(page.locator("#live")).to_have_text("final")

    # A tile opens its job, whose page links back to the batch.
    tiles.nth(2).locator("a").click()
    expect(page).to_have_url(re.compile(f"/jobs/{jobs[2]['id']}$"))
    expect(page.locator("#batch")).to_contain_text(f"{batch['id']} item #2")
    # Its notifications are its batch's: neither has a receiver here (a receiver's words: the unit tests).
    expect(page.locator("#notify-note")).to_have_text("none: neither this item nor its batch has a notify_url")
    page.locator("#batch a").click()
    expect(page).to_have_url(re.compile(f"/batches/{batch['id']}$"))

    # Its items in the job list, and nothing else; a status's count opens those of its items.
    page.locator("#items-link").click()
    expect(page).to_have_url(re.compile(rf"/jobs\?batch_id={batch['id']}$"))
    expect(page.locator("#batch-filter")).to_contain_text(batch["id"])
    expect(page.locator("#rows tr")).to_have_count(3)
    assert sorted(page.locator("#rows tr").evaluate_all("rows => rows.map(r => r.dataset.jobId)")) == \
        sorted(job["id"] for job in jobs)
    page.go_back()
    page.locator('#counts li[data-status="failed"] a').click()
    expect(page.locator("#rows tr")).to_have_count(1)
    expect(page.locator("#rows tr")).to_have_attribute("data-job-id", jobs[1]["id"])
    tab.clean()

    # Its results, through the dashboard's session (which opens nothing on /v1): JSON lines in the items' order,
    # and a ZIP of the stored files with those lines.
    lines = browser.get(f"{stack.base_url}/batches/{batch['id']}/results.jsonl", timeout=10)
    assert lines.status_code == 200 and "attachment" in lines.headers["Content-Disposition"]
    results = [json.loads(line) for line in lines.text.splitlines()]
    assert [(r["index"], r["job_id"], r["status"]) for r in results] == \
        [(i, job["id"], job["status"]) for i, job in enumerate(jobs)]
    archive = browser.get(f"{stack.base_url}/batches/{batch['id']}/results.zip", timeout=10)
    assert archive.status_code == 200 and archive.headers["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert [name.split(".")[0] for name in names] == ["00000", "00002", "results"]
    assert browser.get(f"{stack.base_url}/v1/batches/{batch['id']}/results", timeout=10).status_code == 401


@pytest.fixture()
def held(api, sim) -> tuple[dict, object]:
    """A key that may have one job at BFL at a time (the simulator reset after the test: its held tasks go)."""
    return make_key(api, max_active=1)


def test_a_running_batch_is_followed_live_then_canceled_from_its_page(tab, held):
    _, app = held
    page = tab.page
    sign_in(page, goto="/batches")
    # The first item is stored in a few seconds; the second stays at BFL; the third waits for the key's one place.
    batch = make_batch(app, ["a quick sketch [seconds-3]", "[pending] a slow mural", "a third, never sent"])
    # The open list shows it as it comes (it follows every job's events, as the job list does).
    # While it runs, its items BFL was sent beside those ended: what a cancel would save.
    expect(page.locator(f'tr[data-batch-id="{batch["id"]}"] [data-field="done"]')).to_have_text(
        re.compile(r"^[0-2] sent · 0 of 3 ended$"))
    page.goto(f"/batches/{batch['id']}")
    expect(page.locator("#batch-status")).to_have_text("running")
    page.evaluate("window.notReloaded = true")
    assert page.evaluate(COUNTS)["stored"] == 0

    # Without a reload, the page shows the first item stored with its thumbnail, the second at BFL.
    page.wait_for_function(f"() => ({COUNTS})().stored === 1 && ({COUNTS})().submitted === 1", timeout=30_000)
    expect(page.locator("#sheet li").nth(0).locator("img")).to_have_count(1, timeout=30_000)
    expect(page.locator("#sheet li").nth(1)).to_have_attribute("data-status", "submitted")
    expect(page.locator('[data-field="done"]')).to_have_text("2 sent · 1 of 3 ended")
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("#live")).to_have_text("live")

    # Cancel: the page comes back saying what became of each item, the button gone.
    expect(page.locator("#cancel button")).to_have_text("Cancel batch")
    page.locator("#cancel button").click()
    expect(page).to_have_url(re.compile(rf"/batches/{batch['id']}\?cancel=canceled$"))
    outcome = page.locator("#outcome")
    expect(outcome).to_have_attribute("role", "status")
    expect(outcome).to_contain_text("Batch canceled: 1 item not yet sent ended aborted (never sent, nothing charged); "
                                    "1 already at BFL goes on and is stored as it ends")
    expect(page.locator("#batch-status")).to_have_text("canceled")
    expect(page.locator("#cancel")).to_be_hidden()
    counts = page.evaluate(COUNTS)
    # The item at BFL is paid for: it goes on, never shown canceled.
    assert [counts[s] for s in ("queued", "submitted", "stored", "canceled", "aborted")] == [0, 1, 1, 0, 1]
    expect(page.locator('[data-field="canceled"]')).to_have_text(re.compile(r"^\d{4}-"))
    shown = app.get(f"/v1/batches/{batch['id']}").json()
    assert shown["status"] == "canceled" and shown["counts"]["aborted"] == 1 and shown["counts"]["canceled"] == 0
    assert shown["counts"]["submitted"] == 1 and shown["ended_at"] is None
    tab.clean()


def test_a_cancel_without_the_sessions_csrf_token_is_refused_and_changes_nothing(held, browser, stack):
    _, app = held
    batch = make_batch(app, ["[pending] held at BFL", "waits its turn", "waits too"])
    wait_until(lambda: app.get(f"/v1/batches/{batch['id']}").json()["counts"]["submitted"] == 1, timeout=30,
               message="one item at BFL")
    url = f"{stack.base_url}/batches/{batch['id']}"
    page = browser.get(url, timeout=10).text
    form = re.search(r'<form method="post" action="(/batches/[^"]+/cancel)" id="cancel">\s*'
                     r'<input type="hidden" name="csrf_token" value="([^"]+)">', page)
    assert form, page
    before = app.get(f"/v1/batches/{batch['id']}").json()
    assert before["status"] == "running" and before["counts"]["queued"] == 2

    for forged in ({"csrf_token": "not-the-sessions"}, {}):
        refused = browser.post(stack.base_url + form[1], data=forged, allow_redirects=False, timeout=10)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "csrf_failed"
    after = app.get(f"/v1/batches/{batch['id']}").json()
    assert (after["status"], after["counts"], after["canceled_at"]) == ("running", before["counts"], None)

    done = browser.post(stack.base_url + form[1], data={"csrf_token": form[2]}, allow_redirects=False, timeout=10)
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/batches/{batch['id']}?cancel=canceled")
    assert app.get(f"/v1/batches/{batch['id']}").json()["status"] == "canceled"
    again = browser.post(stack.base_url + form[1], data={"csrf_token": form[2]}, allow_redirects=False, timeout=10)
    assert again.status_code == 303 and again.headers["Location"].endswith("?cancel=ended")
    said = browser.get(stack.base_url + again.headers["Location"], timeout=10).text
    assert "Nothing to cancel: this batch had already been canceled." in said
    # A made-up outcome says nothing: the batch shown is running, not canceled.
    other = make_batch(app, ["another, queued behind the held one"])
    assert 'id="outcome"' not in browser.get(f"{stack.base_url}/batches/{other['id']}?cancel=canceled", timeout=10).text
    # Canceled, not left queued: once the reset simulator forgets the held task, the key's place frees and this item
    # would reach the shared simulator during a later test.
    assert app.post(f"/v1/batches/{other['id']}/cancel").json()["status"] == "canceled"


def test_each_keys_batch_is_shown_with_its_own_key_and_the_list_limited_to_one_on_asking(api, browser, stack):
    a_key, a = make_key(api, name="scope-a")
    b_key, b = make_key(api, name="scope-b")
    ours, theirs = make_batch(a, ["A's only item"]), make_batch(b, ["B's first", "B's second"])
    admins = make_batch(api, ["an admin's item"])
    for client, made in ((a, ours), (b, theirs), (api, admins)):
        ended(client, made["id"])

    def listed(query: str = "") -> list[str]:
        html = browser.get(f"{stack.base_url}/batches{query}", timeout=10).text
        return re.findall(r'<tr data-batch-id="(bat_[^"]+)"', html)

    everyone = listed()
    assert everyone.index(admins["id"]) < everyone.index(theirs["id"]) < everyone.index(ours["id"])  # newest first
    assert listed(f"?key_id={a_key['id']}") == [ours["id"]]
    assert listed(f"?key_id={b_key['id']}") == [theirs["id"]]
    assert listed("?key_id=key_0000000000000000")[:3] == everyone[:3]  # a made-up key: back to every batch

    # B's batch's page names B, its items link lists B's two jobs and no other; the admin's says so.
    page = browser.get(f"{stack.base_url}/batches/{theirs['id']}", timeout=10).text
    assert re.search(rf'<dd id="app-key"><a href="/batches\?key_id={b_key["id"]}"[^>]*>scope-b</a>', page)
    assert len(re.findall(r'<li data-job-id="job_', page)) == 2
    items = browser.get(f"{stack.base_url}/jobs", params={"batch_id": theirs["id"]}, timeout=10).text
    assert sorted(re.findall(r'<tr data-job-id="(job_[^"]+)"', items)) == sorted(j["id"] for j in items_of(b, theirs["id"]))
    assert "an admin token" in browser.get(f"{stack.base_url}/batches/{admins['id']}", timeout=10).text
    live = browser.get(f"{stack.base_url}/live/batches", params={"key_id": a_key["id"]}, timeout=10).json()
    assert [(row["id"], row["key"]) for row in live["batches"]] == [(ours["id"], "scope-a")]

    # No such batch: said, not an error page; a signed-out browser is sent to sign in first.
    missing = browser.get(f"{stack.base_url}/batches/bat_00000000000000000000000000", timeout=10)
    assert missing.status_code == 404 and "There is no batch" in missing.text
    assert "not a batch id" in browser.get(f"{stack.base_url}/batches/nope", timeout=10).text
    signed_out = api.http.get(f"{stack.base_url}/batches/{ours['id']}", allow_redirects=False, timeout=10)
    assert signed_out.status_code == 302 and "/signin?next=" in signed_out.headers["Location"]


def test_a_large_batchs_contact_sheet_pages_through_its_items_in_order(held, browser, stack):
    _, app = held
    # One item held at BFL by the key's one place: the other 204 wait, and the sheet shows each by its status.
    batch = make_batch(app, ["[pending] holds the key's place", *(f"catalog item {i}" for i in range(1, 205))])
    url = f"{stack.base_url}/batches/{batch['id']}"

    def indexes(html: str) -> list[int]:
        return [int(i.replace(",", "")) for i in re.findall(r'<span class="index" data-field="label">#([\d,]+)<', html)]

    first = browser.get(url, timeout=10).text
    assert indexes(first) == list(range(200)) and "(page 1 of 2)" in first
    assert f'href="/batches/{batch["id"]}?page=2#items"' in first and 'id="previous"' not in first
    second = browser.get(url, params={"page": 2}, timeout=10).text
    assert indexes(second) == list(range(200, 205)) and 'id="next"' not in second
    assert indexes(browser.get(url, params={"page": 9}, timeout=10).text) == list(range(200, 205))  # the last page
    assert indexes(browser.get(url, params={"page": "x"}, timeout=10).text) == list(range(200))
    live = browser.get(f"{stack.base_url}/live/batches/{batch['id']}", params={"page": 2}, timeout=10).json()
    assert [t["index"] for t in live["tiles"]] == list(range(200, 205)) and live["batch"]["total"] == "205"
    assert {t["status"] for t in live["tiles"]} == {"queued"} and live["settled"] is False
    # The request ends what it can in its own 2 s, the sweep the rest.
    assert app.post(f"/v1/batches/{batch['id']}/cancel").status_code == 200
    wait_until(lambda: app.get(f"/v1/batches/{batch['id']}").json()["counts"]["aborted"] == 204, timeout=30,
               message="every waiting item aborted")
