"""The dev run shows the overview: ``make run`` starts with nothing, and after a few submissions the
overview's figures and its jobs chart show them."""

from __future__ import annotations

import re
import signal

import requests

from devtools.processes import wait_until
from helpers import sign_in, start_make_run


def figure(page: str, name: str) -> int:
    return int(re.search(rf'data-figure="{name}">(\d+)<', page).group(1))


def test_make_run_starts_empty_and_the_overview_shows_the_first_jobs(tmp_path):
    process, lines = start_make_run(tmp_path)
    try:
        base = re.search(r"fluxhook is running at (http://localhost:\d+)", "\n".join(lines)).group(1)
        token = re.search(r"dev token: (\S+)", "\n".join(lines)).group(1)
        http, answer = sign_in(base, token)
        assert answer.status_code == 303 and answer.headers["Location"] == "/"
        empty = http.get(base + "/", timeout=10).text
        assert figure(empty, "submitted") == 0 and figure(empty, "stored") == 0
        assert "No jobs in the last 24 hours yet" in empty

        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {token}"
        ids = [api.post(f"{base}/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": f"first run {n}"}},
                        timeout=10).json()["id"] for n in range(3)]
        for job_id in ids:
            wait_until(lambda job_id=job_id: api.get(f"{base}/v1/jobs/{job_id}", timeout=5).json()["status"] == "stored",
                       timeout=30, message=f"job {job_id} to be stored")

        # Each process writes its hourly counts every few seconds: the web's submissions, the worker's stored jobs.
        page = wait_until(lambda: (lambda text: text if min(figure(text, "submitted"), figure(text, "stored")) >= 3
                                   else None)(http.get(base + "/", timeout=10).text), timeout=15,
                          message="the three counted as submitted and stored")
        assert (figure(page, "submitted"), figure(page, "stored"), figure(page, "ended_badly")) == (3, 3, 0)
        assert "No jobs in the last" not in page
        # The jobs chart holds the three, drawn as stored: in the last hour's column, or split between the last two
        # when the run crossed an hour (each count is keyed by its event's hour, the columns by the page's).
        jobs_chart, credits_chart = page.split('id="jobs-chart"')[1].split('id="latency-chart"')[0], \
            page.split('id="credits-chart"')[1]
        columns = [int(n) for n in re.findall(r'<g class="col" data-key="[^"]+" data-total="(\d+)">', jobs_chart)]
        assert len(columns) == 24 and sum(columns[-2:]) == 3 and sum(columns) == 3
        assert sum(int(n) for n in re.findall(r'data-series="stored" data-value="(\d+)"', jobs_chart)) == 3
        # And the credits by day and model: the simulator's price of 3 credits each (today's, or split at midnight).
        spent = [float(n) for n in re.findall(r'data-total="([\d.]+)">', credits_chart)]
        assert sum(spent[-2:]) == 9 and sum(spent) == 9
        assert 'data-series="flux-2-pro"' in credits_chart
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
