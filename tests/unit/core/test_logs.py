"""Log filters (fluxhook/core/logs.py): RQ's routine lines are dropped, credentials in URLs are scrubbed."""

from __future__ import annotations

import pytest

from fluxhook.core.logs import redact_urls


def test_rq_routine_job_lines_are_dropped_but_lifecycle_and_problems_kept():
    import logging

    from fluxhook.core.logs import QuietRoutineJobs

    def record(name: str, level: int, message: str) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, message, None, None)

    quiet = QuietRoutineJobs()
    assert not quiet.filter(record("rq.worker", logging.INFO, "Worker abc: fluxhook: worker.sweep.sweep() (x)"))
    assert not quiet.filter(record("rq.worker", logging.INFO, "Worker abc: fluxhook: Job OK (x)"))
    assert not quiet.filter(record("rq.cron", logging.INFO, "Enqueued job sweep to queue fluxhook"))
    assert not quiet.filter(record("rq.worker", logging.INFO, "Worker abc: fluxhook-control: worker.sweep.sweep() (x)"))
    assert not quiet.filter(record("rq.worker", logging.INFO, "Worker abc: cleaning registries for queue: fluxhook"))
    assert not quiet.filter(record("rq.worker", logging.INFO, "Worker abc: cleaning group registries"))
    assert quiet.filter(record("rq.worker", logging.INFO, "Worker abc: warm shut down requested"))
    assert quiet.filter(record("rq.worker", logging.ERROR, "Worker abc: fluxhook: Job OK (x)"))
    assert quiet.filter(record("fluxhook.storing", logging.INFO, "image stored: Job OK"))


def test_redact_urls_scrubs_the_credentials_urls_carry_and_keeps_the_rest():
    line = ("Invalid HTTP request line: 'POST /webhooks/bfl/ImpvYl8.zQGv-Ld_W45 HTTP/1.1' "
            "GET /v1/jobs/job_1/image?token=eyJ.x-y_z&w=1 https://d.example/s.png?se=2026-11-21&Sig=Zm9v%3D "
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AK%2F1&X-Amz-Signature=abc123")
    assert redact_urls(line) == (
        "Invalid HTTP request line: 'POST /webhooks/bfl/[redacted] HTTP/1.1' "
        "GET /v1/jobs/job_1/image?token=[redacted]&w=1 https://d.example/s.png?se=2026-11-21&Sig=[redacted] "
        "https://b.s3.amazonaws.com/k?X-Amz-Credential=[redacted]&X-Amz-Signature=[redacted]")


@pytest.mark.parametrize("text", ["POST /webhooks/bfl 200", "callback refused reason=bad_token job_id=job_1",
                                  "/v1/jobs?status=stored&cursor=abc", "tokens=3 signature_checked=true"])
def test_redact_urls_leaves_text_without_url_credentials_alone(text):
    assert redact_urls(text) == text
