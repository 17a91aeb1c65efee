"""``GET /openapi.json``: the OpenAPI document of the HTTP API, kept beside this module as ``openapi.json``."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, Response, current_app
from flask.blueprints import BlueprintSetupState

DOCUMENT = Path(__file__).with_name("openapi.json")
_KEY = "fluxhook.openapi"

bp = Blueprint("openapi", __name__)


@bp.record_once
def _load(state: BlueprintSetupState) -> None:
    """Read the document once, when ``create_app`` registers this blueprint; a broken file stops the app there."""
    body = DOCUMENT.read_bytes()
    json.loads(body)
    state.app.extensions[_KEY] = body


@bp.get("/openapi.json")
def document():
    """The document exactly as kept in the repository; no authentication."""
    return Response(current_app.extensions[_KEY], mimetype="application/json")
