"""/metrics over real HTTP: counts recorded by web and worker processes add up, once each has written them (every
few seconds)."""

from __future__ import annotations

import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import API_TOKEN, ready_payload
from devtools.processes import wait_until
from fluxhook.metrics import COUNTERS, HISTOGRAMS
from fluxhook.store.effects import FLUSH_INTERVAL

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def _scrape(stack) -> dict[tuple[str, tuple], float]:
    response = requests.get(stack.base_url + "/metrics", timeout=10, headers=AUTH)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _delta(before, after, name, **labels) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_every_family_is_exposed_with_help_and_type(stack):
    text = requests.get(stack.base_url + "/metrics", timeout=10, headers=AUTH).text
    for name in [*COUNTERS, *HISTOGRAMS, "fluxhook_jobs", "fluxhook_queue_depth", "fluxhook_failed_tasks",
                 "fluxhook_bfl_slots_in_use", "fluxhook_bfl_slots_waiting", "fluxhook_sweep_due",
                 "fluxhook_bfl_account_cooling", "fluxhook_bfl_credits"]:
        assert f"# HELP {name}" in text and f"# TYPE {name}" in text


COUNTED = ("fluxhook_downloads_total", "fluxhook_callbacks_total", "fluxhook_submissions_total",
           "fluxhook_polls_total")


def _settled(stack) -> dict[tuple[str, tuple], float]:
    """A reading with every earlier test's counts in: unchanged across one of every process's writes."""
    def counted(reading):
        return {key: value for key, value in reading.items() if key[0] in COUNTED}

    def unchanged():
        first = _scrape(stack)
        time.sleep(FLUSH_INTERVAL + 1)  # a window of time is what is measured here, not a condition to wait on
        second = _scrape(stack)
        return second if counted(first) == counted(second) else None
    return wait_until(unchanged, timeout=60, interval=0, message="no count still on its way from earlier tests")


def test_counts_add_up_during_a_run(api, sim, stack):
    before = _settled(stack)
    jobs = [api.submit(f"[pending] metrics {n}") for n in range(3)]
    lost = api.submit("[drop] metrics lost callback")
    for job in jobs:
        sim.complete(job["bfl_id"])  # the simulator calls back, as BFL does
    for job in jobs:
        api.wait_for(job["id"], "ready", "stored")
    assert api.callback(jobs[0]["id"], ready_payload(jobs[0]["bfl_id"], "https://x/y.png")).status_code == 200
    assert api.callback(jobs[1]["id"], {"id": jobs[1]["bfl_id"], "status": "Ready"}, secret="wrong").status_code == 401
    assert api.callback(jobs[2]["id"], b"not json").status_code == 400
    for job in [*jobs, lost]:
        assert api.wait_for(job["id"], timeout=20)["status"] == "stored"
    polls = api.job(lost["id"])["attempts"]["polls"]

    last = [("fluxhook_downloads_total", {"outcome": "stored"}, 4),
            ("fluxhook_callbacks_total", {"outcome": "refused", "reason": "invalid_request"}, 1),
            ("fluxhook_polls_total", {"outcome": "ready", "account": "default"}, 1)]
    # Each process writes its counts every few seconds (store/effects.py's Tallies): the last of each are in once these are.
    after = wait_until(lambda: (lambda s: s if all(_delta(before, s, name, **labels) >= count
                                                   for name, labels, count in last) else None)(_scrape(stack)),
                       timeout=20, message="every process's counts")
    assert _delta(before, after, "fluxhook_callbacks_total", outcome="accepted", reason="") == 3
    assert _delta(before, after, "fluxhook_callbacks_total", outcome="duplicate", reason="") == 1
    assert _delta(before, after, "fluxhook_callbacks_total", outcome="refused", reason="bad_secret") == 1
    assert _delta(before, after, "fluxhook_callbacks_total", outcome="refused", reason="invalid_request") == 1
    assert _delta(before, after, "fluxhook_submissions_total", outcome="submitted", account="default") == 4
    assert _delta(before, after, "fluxhook_downloads_total", outcome="stored") == 4
    assert _delta(before, after, "fluxhook_polls_total", outcome="ready", account="default") == 1
    assert _delta(before, after, "fluxhook_polls_total", outcome="pending", account="default") == polls - 1
    # Every stored image is one observation of each histogram; the +Inf bucket counts them all.
    for name in ("fluxhook_download_seconds", "fluxhook_completion_to_stored_seconds"):
        assert _delta(before, after, f"{name}_count") == 4
        assert _delta(before, after, f"{name}_bucket", le="+Inf") == 4
        assert _delta(before, after, f"{name}_sum") > 0
    listed = requests.get(stack.base_url + "/v1/jobs?status=stored&limit=100", timeout=10,
                          headers=api.http.headers).json()
    assert after[("fluxhook_jobs", (("status", "stored"),))] >= len(listed["jobs"])
