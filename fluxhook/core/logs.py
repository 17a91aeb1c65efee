"""Logging: one JSON object per line on stdout, with known secrets scrubbed as a last line of defence."""

from __future__ import annotations

import logging
import re
import sys
from typing import Iterable

from pythonjsonlogger.json import JsonFormatter

REDACTED = "[redacted]"


# Credentials that URLs carry, whoever quotes the URL (gunicorn quotes a request line it refuses):
# webhook-URL tokens in paths, image-link tokens and delivery-link signatures in queries.
_URL_CREDENTIALS = re.compile(
    r"(/webhooks/bfl/)[^/\s'\"?#]+"
    r"|([?&](?:token|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&\s'\"#]+",
    re.IGNORECASE)


def redact_urls(text: str) -> str:
    """``text`` with the credentials of any URL in it replaced."""
    return _URL_CREDENTIALS.sub(lambda m: (m.group(1) or m.group(2)) + REDACTED, text)


class RedactSecrets(logging.Filter):
    """Replace any configured secret, and any URL's credentials, that slipped into a log record's message."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_urls(message)
        for secret in self.secrets:
            cleaned = cleaned.replace(secret, REDACTED)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


# RQ logs four INFO lines for every job it runs, and its cron one per sweep queued: with a sweep
# every second that drowns the events that matter. fluxhook's own lines say what each task did.
_RQ_ROUTINE = re.compile(r"Job OK|result is kept|result discarded|Successfully completed|: fluxhook(?:-\w+)?: "
                         r"|Enqueued job|cleaning (?:group )?registries")


class QuietRoutineJobs(logging.Filter):
    """Drop RQ's per-job INFO chatter (kept at DEBUG level)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return (record.levelno > logging.INFO or not record.name.startswith("rq.")
                or not _RQ_ROUTINE.search(record.getMessage()))


def configure_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """Send every log record to stdout as JSON (``ts``, ``level``, ``logger``, ``event`` and extra fields)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "ts", "levelname": "level", "name": "logger", "message": "event"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    )
    handler.addFilter(RedactSecrets(secrets))
    if level != "DEBUG":
        handler.addFilter(QuietRoutineJobs())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The access logs of these libraries name URL paths, which hold webhook tokens and image signatures.
    for noisy in ("urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def config_secrets(config) -> list[str]:
    """Every secret value in the configuration, for ``RedactSecrets``."""
    accounts = [secret for account in config.accounts for secret in (account.api_key, *account.webhook_secrets)]
    return [config.bfl_api_key, *accounts, *config.secret_keys, *config.webhook_secrets, *config.api_tokens,
            config.notify_secret or "", config.metrics_token or ""]
