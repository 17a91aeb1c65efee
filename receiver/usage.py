"""``GET /v1/usage``: credits and jobs per UTC day and model, and today's spend against the daily limit."""

from __future__ import annotations

import time

from flask import Blueprint, request

from fluxhook.credits.usage import usage_report

from .auth import require_bearer
from .context import services

bp = Blueprint("usage", __name__, url_prefix="/v1")


@bp.before_request
def authenticate():
    require_bearer()


@bp.get("/usage")
def show():
    """Usage from ``from`` to ``to`` (``YYYY-MM-DD``, at most 366 days; by default the last 30)."""
    return usage_report(services(), request.args.get("from") or None, request.args.get("to") or None, time.time())
