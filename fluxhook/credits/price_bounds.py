"""What a submission reserves against a credit limit before BFL states its price: the model catalog's upper bound
for that very request, read as BFL will read it (pure).

BFL states ``cost`` only in its answer, so the budget reserves the most the catalog's price rule can charge
for the request: its output size as BFL reads ``width`` and ``height`` (whole numbers in any JSON form, as
BFL's schema coerces them; anything it could not read counts as the model's largest output), at most the
model's largest output and at least the first megapixel BFL charges whole; every input image BFL reads at the
most megapixels the catalog says it reads from one; a video's seconds and batch likewise; and where the price
depends on request fields (FLUX 3 Image's resolution class, FLUX 3 Video's mode, draft and resolution), the rate
those fields select, the highest when they select none. The bound is never
learned from earlier answers, so no caller can lower another's bound by what it sends first. BFL's stated
price settles the reservation; one above the bound is counted, and its model's requests go alone from then on
(``fluxhook.credits.budget``). A model the catalog cannot bound (no price) has no bound: its requests go alone.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping, NamedTuple

from fluxhook.core.catalog import MEGAPIXEL, Model
from fluxhook.credits.accounting import MICRO

# A draft video may be asked in a batch of up to this many.
MAX_BATCH = 4
_WHOLE = re.compile(r"^\s*[+-]?\d+\s*$")


class Size(NamedTuple):
    """What a request asks for, as BFL will read it (at most what the model makes)."""

    output_mp: float  # megapixels made, at least one
    input_images: int  # input images BFL reads
    seconds: int = 0  # a video's length, times its batch
    rate: float | None = None  # the price rule's rate the request's fields select; None: the rule's highest

    def encode(self) -> str:
        """As a job's record keeps it while its input waits in storage."""
        rate = "" if self.rate is None else f",{self.rate!r}"
        return f"{self.output_mp!r},{self.input_images},{self.seconds}{rate}"

    @classmethod
    def decode(cls, text: str | None) -> "Size | None":
        """A size as ``encode`` wrote it; None for anything else."""
        parts = (text or "").split(",")
        if len(parts) not in (3, 4) or not all(p.isascii() and p.isdigit() and len(p) < 12 for p in parts[1:3]):
            return None
        try:
            output, rate = float(parts[0]), float(parts[3]) if len(parts) == 4 else None
        except ValueError:
            return None
        if not math.isfinite(output) or output < 0 or (rate is not None and (not math.isfinite(rate) or rate < 0)):
            return None
        return cls(output, int(parts[1]), int(parts[2]), rate)


def whole_number(value: Any) -> int | None:
    """``value`` as BFL's schema reads a whole number (an int, a float with no fraction, a string of digits);
    None when it would not read one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str) and _WHOLE.fullmatch(value) and len(value) < 20:
        return int(value)
    return None


def _output_mp(model: Model, body: Mapping[str, Any]) -> float:
    width, height = body.get("width"), body.get("height")
    if width is None and height is None and not any(body.get(name) for name in model.input_fields):
        return model.default_mp
    w, h = whole_number(width), whole_number(height)
    if w is None or h is None or w <= 0 or h <= 0:
        return model.max_output_mp  # unread, or sized from an input image: at the most the model makes
    return min(model.max_output_mp, w * h / MEGAPIXEL)


def _inputs(model: Model, body: Mapping[str, Any]) -> int:
    """The input images BFL reads: one per field given, each item of a list field (FLUX 3 Image's ``images``)."""
    count = 0
    for name in model.input_fields:
        value = body.get(name)
        count += len(value) if isinstance(value, list) else (1 if value else 0)
    return count


def request_size(model: Model, body: Mapping[str, Any]) -> Size:
    """The size of a submission ``body`` (BFL's request fields) for ``model``, as BFL will read it."""
    inputs = _inputs(model, body)
    seconds = 0
    if model.kind == "video":
        keyframes = body.get("keyframes")
        inputs = min(len(keyframes), model.input_images) if isinstance(keyframes, list) else 0
        asked = body.get("duration")
        duration = whole_number(asked) if asked is not None else model.default_seconds
        most = model.max_seconds or 0
        duration = most if duration is None or duration <= 0 else min(duration, most or duration)
        batch = whole_number(body.get("batch", 1))
        batch = MAX_BATCH if batch is None or batch < 1 else min(batch, MAX_BATCH)
        seconds = duration * batch
    rate = model.price.rate(body) if model.price is not None and model.price.rule != "megapixel" else None
    return Size(max(1.0, _output_mp(model, body)), inputs, seconds, rate)


def capped(model: Model | None, body: Mapping[str, Any]) -> dict:
    """The request as it is sent: a video's ``duration`` and ``batch`` no larger than the catalog's most, which its
    bound counts (``request_size``), so that BFL never charges it for more than it was allowed to reserve."""
    sent = dict(body)
    if model is None or model.kind != "video":
        return sent
    duration = whole_number(sent.get("duration")) if "duration" in sent else None
    if model.max_seconds and duration is not None and duration > model.max_seconds:
        sent["duration"] = model.max_seconds
    batch = whole_number(sent.get("batch")) if "batch" in sent else None
    if batch is not None and batch > MAX_BATCH:
        sent["batch"] = MAX_BATCH
    return sent


def bound(model: Model | None, size: Size) -> int | None:
    """The most a request of ``size`` may cost, in micro-credits (whole credits, rounded up, so that BFL's own
    rounding of its price never passes it); None when the catalog cannot bound it."""
    if model is None or model.price is None:
        return None
    price = model.price
    rate = price.highest if size.rate is None else min(size.rate, price.highest)
    if price.rule == "image":
        credits = rate
    elif price.rule == "second":
        # Per megapixel-second (video upscaling): every frame at the most the model makes, as the output's size
        # follows an input BFL alone reads.
        credits = rate * size.seconds * (model.max_output_mp if price.per_megapixel else 1)
    else:
        # BFL states megapixels to two decimals: a request is charged for at most its own, rounded up.
        made = math.ceil(size.output_mp * 100 - 1e-9) / 100
        read = size.input_images * model.max_input_mp
        credits = price.first + (made - 1) * price.each + read * price.each
    return math.ceil(credits - 1e-9) * MICRO
