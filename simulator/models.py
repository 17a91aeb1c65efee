"""BFL's models as its API knows them, and the request fields its schemas check, FastAPI's way.

An unknown model is a 404 at BFL; a body its schema refuses is a 422 whose ``detail`` lists each refused
field (``loc``, ``msg``, ``type``, as FastAPI and pydantic word them). FLUX 3 video's schema is strict: a
field it does not name is refused too, and so are FLUX 3 Image's and BFL's tools' (``flux-tools/...``), which
take no webhook field either: a model the catalog says takes none refuses ``webhook_url`` and ``webhook_secret``
whatever else it knows. Only what a client would notice is checked: the types of the common fields, the
enumerations, and the strict schemas' field names.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from fluxhook.core.catalog import WEBHOOK_FIELDS, Catalog, load

VIDEO = "flux-3-video"
IMAGE_3 = "flux-3-image"


@functools.cache
def catalog() -> Catalog:
    """The models BFL serves: fluxhook's catalog, with the operator's BFL_MODELS_FILE merged over it (read once)."""
    problems: list[str] = []
    found = load(os.environ.get("BFL_MODELS_FILE") or None, problems)
    if problems:
        raise SystemExit("; ".join(problems))
    return found


_INTEGERS = ("width", "height", "seed", "steps", "safety_tolerance", "batch")
_NUMBERS = ("guidance",)
_BOOLEANS = ("prompt_upsampling", "raw", "generate_audio", "draft")
_STRINGS = ("prompt", "aspect_ratio", "webhook_url", "webhook_secret", "input_image", "mode", "resolution", "version")
_CHOICES = {
    "output_format": ("jpeg", "png", "webp"),
    "resolution": ("hd", "fhd", "qhd", "uhd"),
    "mode": ("t2v", "i2v", "v2v", "draft_enhance", "text-to-video", "image-continuation", "video-continuation",
             "draft-enhance"),
}
# FLUX 3 Image's resolution classes (its `resolution` is no video's).
IMAGE_3_RESOLUTIONS = ("768sq", "1k", "1.5k", "2k", "4k")
# FLUX 3 video's fields (its schema refuses any other).
VIDEO_FIELDS = frozenset({
    "mode", "prompt", "keyframes", "start_video", "draft_cache", "aspect_ratio", "resolution", "duration",
    "generate_audio", "version", "draft", "batch", "seed", "safety_tolerance", "webhook_url", "webhook_secret",
})
# The strict schemas of FLUX 3 Image and BFL's tools: every other field is a 422 (webhook fields included).
STRICT_FIELDS = {
    VIDEO: VIDEO_FIELDS,
    IMAGE_3: frozenset({"prompt", "images", "aspect_ratio", "resolution", "grounding", "safety_tolerance", "version"}),
    "flux-tools/video-edit-v1": frozenset({"video", "prompt", "safety_tolerance"}),
    "flux-tools/video-upscale-v1": frozenset({"input_video", "prompt", "upscale_factor", "creativity",
                                              "safety_tolerance"}),
    "flux-tools/outpainting-v1": frozenset({"input_image", "width", "height", "reference_offset_x",
                                            "reference_offset_y", "mode", "prompt", "seed", "safety_tolerance",
                                            "output_format"}),
    "flux-tools/erase-v1": frozenset({"image", "mask", "dilate_pixels", "seed", "safety_tolerance", "output_format"}),
    "flux-tools/deblur-v1": frozenset({"image", "seed", "safety_tolerance", "output_format"}),
    "flux-tools/vto-v1": frozenset({"person", "garment", "prompt", "seed", "safety_tolerance", "output_format"}),
    "flux-tools/vto-v2": frozenset({"person", "garment", "prompt", "seed", "safety_tolerance", "output_format"}),
}
# The tools that need no prompt (the others refuse a request without one).
NO_PROMPT = frozenset({"flux-tools/video-upscale-v1", "flux-tools/outpainting-v1", "flux-tools/erase-v1",
                       "flux-tools/deblur-v1"})


def known(model: str) -> bool:
    """Whether BFL's API has an endpoint for ``model``."""
    return model in catalog()


def field_errors(model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """FastAPI-style errors for the fields of a submission body that the model's schema refuses."""
    errors = []
    entry = catalog().get(model)
    strict = STRICT_FIELDS.get(model)
    for name, value in body.items():
        problem = _problem(model, name, value)
        if problem is None and ((strict is not None and name not in strict)
                                or (entry is not None and not entry.webhook and name in WEBHOOK_FIELDS)):
            problem = ("extra_forbidden", "Extra inputs are not permitted")
        if problem is not None:
            kind, message = problem
            errors.append({"loc": ["body", name], "msg": message, "type": kind, "input": value})
    return errors


def _problem(model: str, name: str, value: Any) -> tuple[str, str] | None:
    if value is None:
        return None
    if model == IMAGE_3 and name == "resolution":
        if value in IMAGE_3_RESOLUTIONS:
            return None
        words = [f"'{c}'" for c in IMAGE_3_RESOLUTIONS]
        return "enum", f"Input should be {', '.join(words[:-1])} or {words[-1]}"
    if name in _INTEGERS and not _integer(value):
        return "int_parsing", "Input should be a valid integer, unable to parse string as an integer"
    if name in _NUMBERS and not _number(value):
        return "float_parsing", "Input should be a valid number, unable to parse string as a number"
    if name in _BOOLEANS and not isinstance(value, bool):
        return "bool_parsing", "Input should be a valid boolean, unable to interpret input"
    if name in _STRINGS and not isinstance(value, str):
        return "string_type", "Input should be a valid string"
    if name in _CHOICES and value not in _CHOICES[name]:
        words = [f"'{c}'" for c in _CHOICES[name]]
        return "enum", f"Input should be {', '.join(words[:-1])} or {words[-1]}"
    return None


def _integer(value: Any) -> bool:
    # pydantic's lax mode takes whole numbers, also as strings ("1024") and floats (1024.0).
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, str) and value.strip().lstrip("-").isdigit()


def _number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return isinstance(value, str)
