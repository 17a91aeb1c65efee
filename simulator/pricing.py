"""What a task costs, in credits (1 credit = 1 US cent), as BFL's answer to a submission states it.

FLUX.2 is priced by megapixel: the first megapixel made, each further one made, and each one read
from input images, as BFL's price list gives it; FLUX.1 models have one price per image; any other
model (flux-dev, made-up names in tests) costs 1 credit. A megapixel is 1024 x 1024 pixels, an
unsized task is 1024 x 1024, and each input image counts as one megapixel (the simulator does not
decode them).
"""

from __future__ import annotations

from typing import Any

# model: (first megapixel made, each further megapixel made or read)
PER_MEGAPIXEL = {
    "flux-2-klein-4b": (1.4, 0.1),
    "flux-2-klein-9b": (1.5, 0.2),
    "flux-2-pro": (3.0, 1.5),
    "flux-2-max": (7.0, 3.0),
    "flux-2-flex": (5.0, 5.0),
}
PER_IMAGE = {
    "flux-kontext-pro": 4.0,
    "flux-kontext-max": 8.0,
    "flux-pro-1.1": 4.0,
    "flux-pro-1.1-ultra": 6.0,
    "flux-pro-1.1-raw": 6.0,
    "flux-pro-1.0-fill": 5.0,
}
OTHER = 1.0
MEGAPIXEL = 1024 * 1024
DEFAULT_SIDE = 1024
MAX_INPUT_IMAGES = 8


def megapixels(body: dict[str, Any]) -> tuple[float, float]:
    """(input megapixels, output megapixels) of a submission body, to two decimals as BFL reports them."""
    width, height = _side(body.get("width")), _side(body.get("height"))
    output = round(width * height / MEGAPIXEL, 2)
    names = ["input_image"] + [f"input_image_{n}" for n in range(2, MAX_INPUT_IMAGES + 1)]
    inputs = sum(1 for name in names if body.get(name))
    return float(inputs), output


def price(model: str, body: dict[str, Any]) -> dict[str, float]:
    """The ``cost``, ``input_mp`` and ``output_mp`` fields of BFL's answer to this submission."""
    input_mp, output_mp = megapixels(body)
    if model in PER_MEGAPIXEL:
        first, each = PER_MEGAPIXEL[model]
        credits = first + max(0.0, output_mp - 1) * each + input_mp * each
    else:
        credits = PER_IMAGE.get(model, OTHER)
    return {"cost": round(credits, 2), "input_mp": input_mp, "output_mp": output_mp}


def _side(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 64 <= value <= 4096:
        return DEFAULT_SIDE
    return value
