"""BFL's models as its API knows them: fluxhook's model catalog, each model with the request schema its 422
checks (``fluxhook/core/catalog.toml``, the one home of both).

An unknown model is a 404 at BFL; a body its schema refuses is a 422 whose ``detail`` lists each refused field
(``loc``, ``msg``, ``type``, as FastAPI and pydantic word them), read by ``fluxhook.core.catalog``, the very
rules fluxhook refuses a body by before sending it.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from fluxhook.core.catalog import Catalog, load


@functools.cache
def catalog() -> Catalog:
    """The models BFL serves: fluxhook's catalog, with the operator's BFL_MODELS_FILE merged over it (read once)."""
    problems: list[str] = []
    found = load(os.environ.get("BFL_MODELS_FILE") or None, problems)
    if problems:
        raise SystemExit("; ".join(problems))
    return found


def known(model: str) -> bool:
    """Whether BFL's API has an endpoint for ``model``."""
    return model in catalog()


def field_errors(model: str, body: Any) -> list[dict[str, Any]]:
    """BFL's 422 ``detail`` for a submission body to ``model`` (empty when its schema takes it); a model outside
    the catalog (the any_model setting) has only to send an object."""
    entry = catalog().get(model)
    if entry is None:
        return [] if isinstance(body, dict) else [
            {"loc": ["body"], "msg": "Input should be a valid dictionary or object to extract fields from",
             "type": "model_attributes_type"}]
    return entry.refusals(body)
