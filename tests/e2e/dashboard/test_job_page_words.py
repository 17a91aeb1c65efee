"""A job's page over real HTTP (the session stack's web, worker and Redis, and the simulator): it names the BFL
account that ran the job, as the job's JSON does, and tells its story in sentences a person reads, never
fluxhook's codes. The words themselves: tests/unit/receiver/test_dashboard_words.py."""

from __future__ import annotations

import html
import re


def _said(entry: dict) -> str:
    return f"{entry['title']}: {entry['text']}" if entry["text"] else entry["title"]


def test_a_failure_called_back_then_confirmed_by_a_poll_reads_in_plain_words(stack, api, sim, browser):
    sent = api.submit("[pending] a failure told in words")
    sim.complete(sent["bfl_id"], "error")  # BFL calls back Error; fluxhook believes it once a poll agrees
    job = api.wait_for(sent["id"], "failed")
    assert job["account"]  # the job's JSON names it: the page must say the same

    page = browser.get(f"{stack.base_url}/jobs/{job['id']}", timeout=10)
    assert page.status_code == 200
    assert f'<dt>BFL account</dt><dd data-field="account">{job["account"]}</dd>' in page.text
    live = browser.get(f"{stack.base_url}/live/jobs/{job['id']}", timeout=10).json()["job"]
    assert live["account"] == job["account"]

    story = [_said(entry) for entry in live["timeline"]]
    called_back = "BFL called back: the task failed; checking with BFL"
    for line in ("Job created", f"Sent to BFL: task {job['bfl_id']} (account {job['account']})", called_back,
                 "Asked BFL: the task failed"):
        assert line in story, (line, story)
    assert story[-1].startswith("Job failed: ")
    # In the order it happened: the poll that confirmed the failure came after the callback that reported it.
    assert story.index("Job created") < story.index(called_back) < story.index("Asked BFL: the task failed")
    assert not [line for line in story if "_" in line], story  # no code (confirm_queued, bfl_error) in the words

    # The server-drawn page says the same as the live JSON the script redraws it from.
    rows = [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", li)).split())
            for li in re.findall(r"<li class=\"tone-[a-z]+\" data-kind=\"[a-z_]+\">(.*?)</li>", page.text, re.S)]
    assert any(row.endswith("BFL called back the task failed; checking with BFL") for row in rows), rows
    assert "confirm queued" not in page.text and "Callback: Error" not in page.text
