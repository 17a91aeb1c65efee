"""The model catalog (pure): every BFL generation endpoint fluxhook may send to, what it makes, how BFL prices it
and how many tasks BFL lets run at once.

The facts live in one data file, ``catalog.toml`` beside this module, which says where each figure comes from;
an operator's ``BFL_MODELS_FILE`` (TOML or JSON in the same format) is merged over it, entry by entry, and
checked at start with one line per problem. The budget bounds a request's price from it, the slot pools take
their default limits from it, the routes refuse every other name, and the simulator serves exactly its models.
"""

from __future__ import annotations

import difflib
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from fluxhook.core.models import MODEL

SHIPPED = Path(__file__).with_name("catalog.toml")
KINDS = ("image", "video")
# How BFL prices a model: one price per image; a first megapixel and each further one made or read; per second.
PRICE_RULES = {"image": ("credits",), "megapixel": ("first", "each"), "second": ("credits",)}
# A megapixel as BFL's price tables count it (1024 x 1024 is 1.05 of them): counted so, a bound is never below
# one counted in 1024 x 1024 pixels.
MEGAPIXEL = 1_000_000
_FIELDS = {"kind", "price", "max_output_mp", "input_images", "max_input_mp", "max_active", "max_seconds",
           "default_seconds", "region", "source", "size", "default_mp", "max_side", "min_side", "multiple_of"}


@dataclass(frozen=True)
class Price:
    """A model's price rule, in credits (1 credit = 1 US cent)."""

    rule: str
    credits: float = 0.0  # per image, or per second of video
    first: float = 0.0  # the first megapixel made
    each: float = 0.0  # each further megapixel made, and each one read from an input image

    def describe(self) -> dict[str, Any]:
        """As ``GET /v1/models`` shows it."""
        if self.rule == "megapixel":
            return {"rule": "megapixel", "first_megapixel": self.first, "each_further_megapixel": self.each}
        return {"rule": self.rule, "credits": self.credits}


@dataclass(frozen=True)
class Model:
    """One generation endpoint, ``POST /v1/{name}``."""

    name: str
    kind: str
    price: Price | None = None  # None: no published price (its requests are sent alone)
    max_output_mp: float = 4.0
    input_images: int = 0  # how many input images BFL reads
    max_input_mp: float = 4.0  # the most megapixels BFL reads from one input image
    max_active: int | None = None  # when BFL allows fewer tasks in flight than the account's
    max_seconds: int | None = None  # video: the longest it makes
    default_seconds: int | None = None  # video: the length when none is asked
    region: str | None = None  # "finetune": only the endpoint where the finetune lives serves it
    default_mp: float = 1.05  # the output when none is asked (1024 x 1024)

    @property
    def input_fields(self) -> tuple[str, ...]:
        """The request fields BFL reads input images from (video keyframes are counted apart)."""
        if self.input_images <= 0 or self.kind == "video":
            return ()
        return ("input_image", *(f"input_image_{n}" for n in range(2, self.input_images + 1)))

    def describe(self) -> dict[str, Any]:
        """As ``GET /v1/models`` lists it."""
        return {"name": self.name, "kind": self.kind, "max_active": self.max_active,
                "price": self.price.describe() if self.price else None, "max_output_mp": self.max_output_mp,
                "input_images": self.input_images, "max_seconds": self.max_seconds, "region": self.region}


class Catalog:
    """The models by name."""

    def __init__(self, models: Mapping[str, Model]):
        self.models = dict(models)  # in the files' order

    def get(self, name: str | None) -> Model | None:
        return self.models.get(name) if name else None

    def __contains__(self, name: object) -> bool:
        return name in self.models

    def closest(self, name: str, count: int = 3) -> list[str]:
        """The catalog names nearest ``name``, for a "did you mean" (nearest first)."""
        return difflib.get_close_matches(name, list(self.models), n=count, cutoff=0.6)

    def limits(self) -> tuple[tuple[str, int], ...]:
        """(model, tasks in flight) for every model BFL limits below the account's: BFL_MODEL_LIMITS' default."""
        return tuple((m.name, m.max_active) for m in self.models.values() if m.max_active is not None)


def _number(entry: Mapping[str, Any], key: str, where: str, problems: list[str], *, whole: bool = False,
            default: Any = None) -> Any:
    value = entry.get(key, default)
    if value is None or value is default:
        return value
    ok = (isinstance(value, int) if whole else isinstance(value, (int, float))) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        problems.append(f"{where}: '{key}' must be a positive {'whole number' if whole else 'number'}, got {value!r}")
        return default
    return value


def _price(value: Any, where: str, problems: list[str]) -> Price | None:
    if value is None:
        return None
    rule = value.get("rule") if isinstance(value, dict) else None
    if rule not in PRICE_RULES:
        problems.append(f"{where}: 'price' must be a table with 'rule' one of {', '.join(PRICE_RULES)}, got {value!r}")
        return None
    figures = {}
    for key in PRICE_RULES[rule]:
        figure = value.get(key)
        if isinstance(figure, bool) or not isinstance(figure, (int, float)) or not math.isfinite(figure) or figure < 0:
            problems.append(f"{where}: price '{key}' must be a number of credits (0 or more), got {figure!r}")
            return None
        figures[key] = float(figure)
    return Price(rule, **figures)


def parse_entry(name: str, entry: Any, where: str, problems: list[str]) -> Model | None:
    """One entry of a catalog file; None (and its problems said) when it is not one."""
    where = f"{where}: model {name!r}"
    if not MODEL.fullmatch(name):
        problems.append(f"{where}: not a BFL model name (lower-case letters, digits, '.' and '-')")
        return None
    if not isinstance(entry, dict):
        problems.append(f"{where}: must be a table of its facts")
        return None
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        problems.append(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(_FIELDS))}")
    kind = entry.get("kind")
    if kind not in KINDS:
        problems.append(f"{where}: 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
        return None
    inputs = entry.get("input_images", 0)
    if isinstance(inputs, bool) or not isinstance(inputs, int) or inputs < 0:
        problems.append(f"{where}: 'input_images' must be a whole number (0 or more), got {inputs!r}")
        inputs = 0
    region = entry.get("region")
    if region not in (None, "finetune"):
        problems.append(f"{where}: 'region' may only be 'finetune', got {region!r}")
        region = None
    return Model(name=name, kind=kind, price=_price(entry.get("price"), where, problems),
                 max_output_mp=_number(entry, "max_output_mp", where, problems, default=4.0),
                 input_images=inputs, max_input_mp=_number(entry, "max_input_mp", where, problems, default=4.0),
                 max_active=_number(entry, "max_active", where, problems, whole=True),
                 max_seconds=_number(entry, "max_seconds", where, problems, whole=True),
                 default_seconds=_number(entry, "default_seconds", where, problems, whole=True), region=region,
                 default_mp=_number(entry, "default_mp", where, problems, default=1.05))


def parse(document: Any, where: str, problems: list[str]) -> dict[str, Model]:
    """The models of a catalog document (``{"models": {name: entry}}``)."""
    models = document.get("models") if isinstance(document, dict) else None
    if not isinstance(models, dict):
        problems.append(f"{where}: must hold a 'models' table of entries by model name")
        return {}
    found = {}
    for name, entry in models.items():
        model = parse_entry(str(name), entry, where, problems)
        if model is not None:
            found[model.name] = model
    return found


def read_file(path: str | Path, problems: list[str]) -> Any:
    """A catalog file's document, TOML or JSON by its name's ending; None (and a problem said) if unreadable."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problems.append(f"BFL_MODELS_FILE: cannot read {str(path)!r}: {exc.strerror or exc}")
        return None
    try:
        return json.loads(raw) if path.suffix.lower() == ".json" else tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        problems.append(f"BFL_MODELS_FILE: {str(path)!r} is not valid {'JSON' if path.suffix == '.json' else 'TOML'}: "
                        f"{exc}")
        return None


def load(extra: str | Path | None, problems: list[str]) -> Catalog:
    """The shipped catalog with ``extra`` (BFL_MODELS_FILE) merged over it, entry by entry."""
    models = parse(tomllib.loads(SHIPPED.read_text("utf-8")), SHIPPED.name, problems)
    if extra:
        document = read_file(extra, problems)
        if document is not None:
            models.update(parse(document, "BFL_MODELS_FILE", problems))
    return Catalog(models)


def _shipped() -> Catalog:
    problems: list[str] = []
    found = load(None, problems)
    if problems:  # a bug of fluxhook's own file
        raise ValueError("; ".join(problems))
    return found


# The catalog as shipped, before any BFL_MODELS_FILE.
SHIPPED_CATALOG = _shipped()
