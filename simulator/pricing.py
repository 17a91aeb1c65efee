"""What a task costs, in credits (1 credit = 1 US cent), as BFL's answer to a submission states it: by the model
catalog's price rule (fluxhook/core/catalog.toml, the same file fluxhook bounds its budget with).

Sizes are read as BFL's schema reads them (whole numbers in any JSON form) and capped at the most the model
makes; an unsized task is 1024 x 1024. The simulator states megapixels of 1024 x 1024 pixels, to two decimals,
and does not decode input images: each counts as one such megapixel. A model the catalog prices not at all
(FLUX 3 video, a model added without a price) costs a credit per second of video, or 1 credit.
"""

from __future__ import annotations

from typing import Any

from fluxhook.core.catalog import Model
from fluxhook.credits.price_bounds import whole_number

from .models import catalog

OTHER = 1.0
MEGAPIXEL = 1024 * 1024
DEFAULT_SIDE = 1024


def megapixels(model: Model | None, body: dict[str, Any]) -> tuple[float, float]:
    """(input megapixels, output megapixels) of a submission body, to two decimals as BFL reports them."""
    width, height = _side(body.get("width")), _side(body.get("height"))
    output = width * height / MEGAPIXEL
    if model is not None:
        output = min(output, model.max_output_mp)
    inputs = sum(1 for name in (model.input_fields if model else ()) if body.get(name))
    return float(inputs), round(output, 2)


def price(model_name: str, body: dict[str, Any]) -> dict[str, float]:
    """The ``cost``, ``input_mp`` and ``output_mp`` fields of BFL's answer to this submission."""
    model = catalog().get(model_name)
    input_mp, output_mp = megapixels(model, body)
    rule = model.price if model is not None else None
    if rule is None:
        seconds = whole_number(body.get("duration")) if model is not None and model.kind == "video" else None
        credits = OTHER * (seconds if seconds and seconds > 0 else 1)
    elif rule.rule == "megapixel":
        credits = rule.first + max(0.0, output_mp - 1) * rule.each + input_mp * rule.each
    elif rule.rule == "second":
        credits = rule.credits * (whole_number(body.get("duration")) or model.default_seconds or 1)
    else:
        credits = rule.credits
    return {"cost": round(credits, 2), "input_mp": input_mp, "output_mp": output_mp}


def _side(value: Any) -> int:
    side = whole_number(value)
    return side if side is not None and side > 0 else DEFAULT_SIDE
