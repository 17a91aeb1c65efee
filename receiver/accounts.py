"""``GET /v1/accounts``: admin tokens see the BFL accounts, never their keys."""

from __future__ import annotations

import time

from flask import Blueprint

from fluxhook.lifecycle.accounts_view import accounts_now

from .auth import require_admin
from .context import services

bp = Blueprint("accounts", __name__, url_prefix="/v1")


@bp.before_request
def authenticate():
    # Which accounts exist, where and with what credits is the operator's business, not an app's.
    require_admin()


@bp.get("/accounts")
def index():
    """Every account: region, host, tasks in flight, jobs it could take, its cooldown, balance and spend today."""
    return {"accounts": accounts_now(services(), time.time())}
