"""What a submission reserves against a credit limit before BFL states its price: an upper bound for
that very request, learned from BFL's answers (pure).

BFL prices a task by the megapixels it makes and reads (FLUX.2: a first megapixel, each further one
made or read; FLUX.1: one price per image), and states ``cost``, ``input_mp`` and ``output_mp`` only in
its answer. fluxhook measures a request in *units* of centi-megapixels (BFL states megapixels to two
decimals): the output it asks for (``width`` x ``height``, 1024 x 1024 when unsized, at least one
megapixel, as BFL charges the first one whole) plus the megapixels its input images hold. The output
is measured from the request itself, never from BFL's ``output_mp``, so that the rate learned and the
bound made from it measure the same thing even for a model that makes another size than it was
asked for. Input images cannot be measured without decoding them, so they count at the most
megapixels per input image BFL has stated reading for that model.

From each answer fluxhook keeps, per model, the highest credits per unit BFL has charged (``rate``),
the smallest request it has seen priced (``smallest``), and the most megapixels per input image BFL
read (``input_per_image``). A request's bound is ``rate`` x its units. That is an upper bound for any
price that grows with size no faster than in proportion (a first megapixel dearer than the next, a
flat price per image, a price per megapixel), for a request no smaller than one already priced.
Anything else has no bound: a model never priced, a request smaller than any priced (its price per
megapixel may be higher), or one with input images for a model never seen reading any.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, NamedTuple

from fluxhook.bfl.costs import Cost

MEGAPIXEL = 1024 * 1024
# One unit is a hundredth of a megapixel, as BFL states megapixels.
UNITS_PER_MP = 100
DEFAULT_SIDE = 1024
# A side BFL would never make: larger ones are measured at this, as BFL refuses or clamps them anyway.
MAX_SIDE = 16384
INPUT_IMAGE_FIELDS = ("input_image", *(f"input_image_{n}" for n in range(2, 11)), "image_prompt", "image",
                      "mask", "control_image")


class Size(NamedTuple):
    """What a request asks for, as far as it can be read before BFL answers."""

    output: int  # units made, at least one megapixel's, rounded up (as a bound is made)
    input_images: int
    # The same rounded down: a rate is learned against the fewest units BFL may have rounded the
    # request to, a bound made against the most, so that rounding never takes a bound below a price.
    output_low: int = 0

    def encode(self) -> str:
        """As a job's record keeps it while its input waits in storage."""
        return f"{self.output},{self.input_images},{self.output_low}"

    @classmethod
    def decode(cls, text: str | None) -> "Size | None":
        """A size as ``encode`` wrote it; None for anything else."""
        parts = (text or "").split(",")
        if len(parts) != 3 or not all(p.isascii() and p.isdigit() and len(p) < 12 for p in parts):
            return None
        return cls(*(int(p) for p in parts))


class Learned(NamedTuple):
    """What BFL's answers taught about one model's prices; each is None until an answer said it."""

    rate: int | None = None  # the highest micro-credits per unit charged
    smallest: int | None = None  # units of the smallest request priced
    input_per_image: int | None = None  # the most units BFL read from one input image


class Observation(NamedTuple):
    """What one priced answer teaches: its rate, its request's units, and units read per input image."""

    rate: int
    units: int
    input_per_image: int | None


def request_size(body: Mapping[str, Any]) -> Size:
    """The size of a submission ``body`` (BFL's request fields), read from the request alone."""
    width, height = _side(body.get("width")), _side(body.get("height"))
    exact = width * height * UNITS_PER_MP / MEGAPIXEL
    inputs = sum(1 for name in INPUT_IMAGE_FIELDS if body.get(name))
    if isinstance(body.get("keyframes"), list):
        inputs += len(body["keyframes"])
    return Size(max(UNITS_PER_MP, math.ceil(exact)), inputs, max(UNITS_PER_MP, math.floor(exact)))


def observe(size: Size, cost: Cost | None) -> Observation | None:
    """What BFL's stated ``cost`` for a request of ``size`` teaches; None if it stated no price."""
    if cost is None or cost.credits is None:
        return None
    read = round((cost.input_mp or 0.0) * UNITS_PER_MP)
    units = (size.output_low or size.output) + read
    per_image = math.ceil(read / size.input_images) if size.input_images and cost.input_mp is not None else None
    return Observation(rate=math.ceil(round(cost.credits * 1_000_000) / units), units=units,
                       input_per_image=per_image)


def bound(learned: Learned, size: Size) -> int | None:
    """The most a request of ``size`` may cost, in micro-credits; None when nothing learned bounds it."""
    if learned.rate is None or learned.smallest is None:
        return None
    units = size.output
    if size.input_images:
        if learned.input_per_image is None:
            return None
        units += size.input_images * learned.input_per_image
    if units < learned.smallest:
        return None
    return learned.rate * units


def _side(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        return DEFAULT_SIDE
    return min(math.ceil(value), MAX_SIDE)
