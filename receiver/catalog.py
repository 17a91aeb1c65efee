"""``GET /v1/models``: the catalog's models the caller may use, with what each costs."""

from __future__ import annotations

from flask import Blueprint

from fluxhook.core.accounts import limit_in

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
    config = services().config
    # The limit in force: BFL_MODEL_LIMITS (defaulting to the catalog's) within BFL_MAX_ACTIVE, or
    # BFL_MAX_ACTIVE itself for a model without a limit of its own (its tasks share the account's slots).
    return {"models": [{**model.describe(),
                        "max_active": limit_in(config.bfl_max_active, config.bfl_model_limits, model.name)}
                       for model in config.catalog.models.values() if caller.may_use(model.name)]}
