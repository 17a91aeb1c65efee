"""The dashboard's job list filters as GET /v1/jobs does (receiver/dashboard.py, templates/dashboard/jobs.html):
a form with every filter, its values kept in the URL and in every link of the list, a mistake shown in the form."""

from __future__ import annotations

import html
import re
import uuid

from key_helpers import make_key


def _tag() -> str:
    return f"zd{uuid.uuid4().hex[:10]}"


def test_the_form_filters_the_list_and_keeps_its_filters_in_every_link(stack, api, sim, browser):
    tag = _tag()
    created, app = make_key(api, name=f"form-{tag}")
    mine = app.submit(f"[pending] Lighthouse {tag}")["id"]
    admins = api.submit(f"[pending] lighthouse {tag}", model="flux-2-max")["id"]
    other = api.submit(f"[pending] a red fox {tag}")["id"]
    base = stack.base_url

    page = browser.get(base + "/jobs", params={"q": f"LIGHTHOUSE {tag}"}, timeout=10)
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert mine in text and admins in text and other not in text
    for name in ("status", "model", "key_id", "account", "q", "from", "to"):
        assert re.search(rf'name="{name}"', text), name
    assert f'value="LIGHTHOUSE {tag}"' in text  # the form shows what it filters by
    assert f'<option value="{created["id"]}"' in text  # keys offered by name
    # Every status link keeps the search; the live refresh asks for the same list.
    assert f"/jobs?status=stored&q=LIGHTHOUSE+{tag}" in text
    assert f"/live/jobs?q=LIGHTHOUSE+{tag}" in text
    live = browser.get(base + "/live/jobs", params={"q": f"lighthouse {tag}", "key_id": created["id"]}, timeout=10).json()
    assert [row["id"] for row in live["jobs"]] == [mine]

    only = html.unescape(browser.get(base + "/jobs", params={"q": tag, "model": "flux-2-max", "account": "",
                                                              "from": "2000-01-01", "to": ""}, timeout=10).text)
    assert admins in only and mine not in only and other not in only


def test_a_mistake_in_the_form_is_shown_not_thrown_away(stack, browser):
    page = browser.get(stack.base_url + "/jobs", params={"from": "last tuesday", "q": "fox"}, allow_redirects=False,
                       timeout=10)
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert 'id="filter-problem"' in text and "'from' must be a date (2026-11-21) or a time" in text
    assert 'value="last tuesday"' in text and 'value="fox"' in text
