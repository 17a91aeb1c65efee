"""``GET /v1/models``: the catalog's models the caller may use, with what each costs."""

from __future__ import annotations

from flask import Blueprint

from .auth import require_bearer
from .context import services

bp = Blueprint("catalog", __name__, url_prefix="/v1")


@bp.before_request
def authenticate():
    require_bearer()


@bp.get("/models")
def index():
    """Every model of the catalog the caller may use (an app key with ``models``: those alone), in the catalog's order."""
    caller = require_bearer()
    models = services().config.catalog.models.values()
    return {"models": [model.describe() for model in models if caller.may_use(model.name)]}
