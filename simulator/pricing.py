"""What a task costs, in credits (1 credit = 1 US cent), as BFL's answer to a submission states it: by the model
catalog's price rule (fluxhook/core/catalog.toml, the same file fluxhook bounds its budget with).

Sizes are read as BFL's schema reads them (whole numbers in any JSON form) and capped at the most the model
makes; an unsized task is 1024 x 1024. The simulator states megapixels of 1024 x 1024 pixels, to two decimals,
and does not decode input images: each counts as one such megapixel. A rate chosen by request fields (FLUX 3
Image's resolution class, FLUX 3 Video's mode, draft and resolution) is the catalog's for those fields. A video
is priced by its output seconds, stated as ``duration``: the length asked; for ``"auto"`` or none, the shortest
its schema allows (FLUX 3 video: 5 s), or the longest it makes for a model that takes no duration (as video edit's
output keeps its source's length); per megapixel-second (video upscaling) at the largest frame. A
model the catalog prices not at all (a model added without a price) costs a credit per second of video, or 1.
"""

from __future__ import annotations

from typing import Any

from fluxhook.core.catalog import Model
from fluxhook.credits.budget import MAX_BATCH, whole_number

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
    inputs = 0
    if model is not None and model.kind == "image":
        for name in model.input_fields:
            value = body.get(name)
            inputs += len(value) if isinstance(value, list) else (1 if value else 0)
    return float(inputs), round(output, 2)


def seconds(model: Model, body: dict[str, Any]) -> int:
    """The seconds of video a task makes (times a draft's batch), at most the model's longest. A model whose
    schema takes a ``duration`` makes the length asked; ``"auto"`` or none (BFL then fits the length to the
    content) the shortest its schema allows, as the simulator has no content to fit: FLUX 3 video's 5 s."""
    most = model.max_seconds or 1
    asked = whole_number(body.get("duration")) if body.get("duration") is not None else model.default_seconds
    rule = model.schema.rule("duration") if model.schema is not None else None
    if (asked is None or asked <= 0) and rule is not None and rule.low is not None:
        asked = int(rule.low)
    length = most if asked is None or asked <= 0 else min(asked, most)
    batch = whole_number(body.get("batch", 1))
    return length * (1 if batch is None or batch < 1 else min(batch, MAX_BATCH))


def price(model_name: str, body: dict[str, Any]) -> dict[str, float]:
    """The ``cost``, ``input_mp`` and ``output_mp`` fields of BFL's answer to this submission (and ``duration``
    for a video)."""
    model = catalog().get(model_name)
    input_mp, output_mp = megapixels(model, body)
    rule = model.price if model is not None else None
    extra: dict[str, float] = {}
    if model is not None and model.kind == "video":
        extra["duration"] = seconds(model, body)
    if rule is None:
        credits = OTHER * extra.get("duration", 1)
    elif rule.rule == "megapixel":
        credits = rule.first + max(0.0, output_mp - 1) * rule.each + input_mp * rule.each
    elif rule.rule == "second":
        if rule.per_megapixel:
            output_mp = model.max_output_mp
        credits = rule.rate(body) * extra.get("duration", 1) * (output_mp if rule.per_megapixel else 1)
    else:
        credits = rule.rate(body)
    return {"cost": round(credits, 2), "input_mp": input_mp, "output_mp": output_mp, **extra}


def _side(value: Any) -> int:
    side = whole_number(value)
    return side if side is not None and side > 0 else DEFAULT_SIDE
