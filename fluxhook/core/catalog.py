"""The model catalog (pure): every BFL generation endpoint fluxhook may send to, what it makes, how BFL prices it
and how many tasks BFL lets run at once.

The facts live in one data file, ``catalog.toml`` beside this module, which says where each figure comes from;
an operator's ``BFL_MODELS_FILE`` (TOML or JSON in the same format) is merged over it, entry by entry, and
checked at start with one line per problem. The budget bounds a request's price from it, the slot pools take
their default limits from it, the routes refuse every other name, and the simulator serves exactly its models.
Each model names its request schema (``[schemas.<name>]``, read here as BFL's pydantic reads a request): a body BFL's
422 would refuse is refused before any job exists, in BFL's own 422 shape, and the simulator refuses the same.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import os
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from fluxhook.core.live import UNWATCHED_POLL_INTERVAL, WATCHED_POLL_DUE
from fluxhook.core.models import MODEL

SHIPPED = Path(__file__).with_name("catalog.toml")
KINDS = ("image", "video")
# How BFL prices a model: one price per image; a first megapixel and each further one made or read; per second.
PRICE_RULES = {"image": ("credits",), "megapixel": ("first", "each"), "second": ("credits",)}
# The rules whose figure may depend on request fields (``by``: FLUX 3's resolution classes, a video's mode).
TABLE_RULES = ("image", "second")
# How long a result URL lives when the entry does not say: BFL's 10 minutes for an image, about 2 hours for a video.
URL_LIFE_BY_KIND = {"image": 600, "video": 7200}
# The fields BFL reads a task's callback from; a model that takes none is followed by polling from its submission.
WEBHOOK_FIELDS = ("webhook_url", "webhook_secret")
# A megapixel as BFL's price tables count it (1024 x 1024 is 1.05 of them): counted so, a bound is never below
# one counted in 1024 x 1024 pixels.
MEGAPIXEL = 1_000_000
_FIELDS = {"kind", "price", "max_output_mp", "input_images", "max_input_mp", "max_active", "max_seconds",
           "default_seconds", "region", "source", "size", "default_mp", "max_side", "min_side", "multiple_of",
           "webhook", "url_life", "inputs", "uncertain", "schema"}
_PRICE_FIELDS = {"rule", "credits", "first", "each", "by", "rates", "defaults", "aliases", "per_megapixel", "note"}
# Joins the values of a rate's fields into its key (``"t2v/false/hd"``); ``*`` stands for any value of a field.
KEY_SEPARATOR = "/"
ANY = "*"
# The value of a field the request leaves out and ``defaults`` does not name (a rate may name it: ``t2v/false/-``).
ABSENT = "-"


@dataclass(frozen=True)
class Price:
    """A model's price rule, in credits (1 credit = 1 US cent).

    With ``by``, the figure depends on request fields: ``rates`` maps their values, joined by ``/`` in ``by``'s
    order, to credits (per image, or per second); a field the request leaves out takes its ``defaults`` value, a
    value is first read through ``aliases``, and ``*`` in a key stands for any value. A request whose values no key
    names is charged at the highest rate, so an unforeseen value can only raise the bound, never lower it. A field
    left out with no default has the value ``-``, for a rate whose default depends on another field.
    """

    rule: str
    credits: float = 0.0  # per image, or per second of video (the highest rate when ``rates`` are given)
    first: float = 0.0  # the first megapixel made
    each: float = 0.0  # each further megapixel made, and each one read from an input image
    by: tuple[str, ...] = ()
    rates: tuple[tuple[str, float], ...] = ()
    defaults: tuple[tuple[str, str], ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()
    per_megapixel: bool = False  # "second": the rate is per megapixel of each output frame (video upscaling)

    def rate(self, body: Mapping[str, Any] | None) -> float:
        """Credits per image or per second for the request ``body`` (None: the highest rate)."""
        if not self.rates:
            return self.credits
        if body is None:
            return self.highest
        defaults, aliases = dict(self.defaults), dict(self.aliases)
        values = []
        for name in self.by:
            value = field_value(body.get(name)) if body.get(name) is not None else defaults.get(name, ABSENT)
            values.append(aliases.get(value, value))
        rates = dict(self.rates)
        for key in _candidates(values):
            if key in rates:
                return rates[key]
        return self.highest

    @property
    def highest(self) -> float:
        """The most any request pays per image or per second."""
        return max((figure for _, figure in self.rates), default=self.credits)

    def describe(self) -> dict[str, Any]:
        """As ``GET /v1/models`` shows it."""
        if self.rule == "megapixel":
            return {"rule": "megapixel", "first_megapixel": self.first, "each_further_megapixel": self.each}
        shown: dict[str, Any] = {"rule": self.rule, "credits": self.highest}
        if self.rates:
            shown.update(by=list(self.by), rates=dict(self.rates), defaults=dict(self.defaults))
        if self.per_megapixel:
            shown["per_megapixel"] = True
        return shown


def field_value(value: Any) -> str:
    """A request field's value as a rate's key names it: ``true``/``false``, whole numbers without ``.0``, and
    text in lower case without surrounding space (BFL's schemas read them so)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value).strip().lower()


def _candidates(values: list[str]) -> list[str]:
    """The keys that may name these values, the most specific first (each field its value, then ``*``)."""
    keys = [[]]  # type: list[list[str]]
    for value in values:
        keys = [key + [choice] for key in keys for choice in (value, ANY)]
    return [KEY_SEPARATOR.join(key) for key in keys]


# --- Request schemas ---
# A model's request schema, and the fields of a body it refuses, in BFL's own 422 shape. BFL's API is FastAPI over
# pydantic: a body its schema refuses is answered ``422`` with ``{"detail": [...]}``, one ``{"loc": ["body", <field>],
# "msg", "type"}`` per refused field (with ``input`` and ``ctx`` where pydantic gives them), in the schema's field
# order, fields it does not know last. A body is checked as pydantic's lax mode reads JSON: ``"1024"`` and ``1024.0``
# are whole numbers, ``"true"`` and ``1`` are booleans. A field the schema does not name passes unless the schema is
# ``strict``; ``null`` passes for a field that is not required. Only what the schema says is refused: types, ranges,
# allowed values, lengths, and required fields (always, or ``required_when`` another field has one of some values).

TYPES = ("string", "integer", "number", "boolean", "array", "object")
_RULE_KEYS = {"type", "min", "max", "choices", "also", "min_length", "max_items", "note"}
_SCHEMA_KEYS = {"fields", "required", "required_when", "strict", "note"}
# pydantic's lax booleans, as JSON strings.
_TRUE_WORDS = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE_WORDS = frozenset({"0", "off", "f", "false", "n", "no"})
# An input longer than this is not echoed back in a refusal (a base64 image would be).
MAX_ECHO = 200


@dataclass(frozen=True)
class FieldRule:
    """What one request field may be: one of ``types`` (any when empty), within ``low``..``high``, one of
    ``choices``, or one of the literal values ``also`` (``duration``: a whole number or ``"auto"``)."""

    types: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    also: tuple[Any, ...] = ()
    min_length: int | None = None
    max_items: int | None = None


@dataclass(frozen=True)
class Schema:
    """A model's request schema: its fields' rules in BFL's order, the required ones, and whether a field it does
    not name is refused (``strict``)."""

    fields: tuple[tuple[str, FieldRule], ...] = ()
    required: tuple[str, ...] = ()
    # (field, other field, its values): ``field`` is required when ``other`` has one of ``values``.
    required_when: tuple[tuple[str, str, tuple[Any, ...]], ...] = ()
    strict: bool = False

    def rule(self, name: str) -> FieldRule | None:
        return dict(self.fields).get(name)


# --- Request schemas: reading one's catalog entry ---

def _unknown_names(table: Mapping[str, Any], known: set[str], what: str, where: str, problems: list[str]) -> bool:
    """Whether ``table`` names anything not ``known``; each such name said once in ``problems``, with what is known."""
    unknown = sorted(set(table) - known)
    if unknown:
        problems.append(f"{where}: unknown {what} {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return bool(unknown)


def parse_schema(value: Any, where: str, problems: list[str]) -> Schema | None:
    """A schema from its catalog entry (``{"fields": {name: rule}, "required": [...], ...}``); None, and each
    problem said, when it is not one."""
    if not isinstance(value, dict):
        problems.append(f"{where}: a schema must be a table with 'fields', got {value!r}")
        return None
    _unknown_names(value, _SCHEMA_KEYS, "schema field(s)", where, problems)
    fields = value.get("fields", {})
    if not isinstance(fields, dict):
        problems.append(f"{where}: 'fields' must be a table of request fields, got {fields!r}")
        return None
    before = len(problems)
    rules = tuple((str(name), _rule(rule, f"{where}: field {name!r}", problems)) for name, rule in fields.items())
    required = _names(value.get("required", []), "required", where, problems)
    when = _required_when(value.get("required_when", {}), where, problems)
    strict = value.get("strict", False)
    if not isinstance(strict, bool):
        problems.append(f"{where}: 'strict' must be true or false, got {strict!r}")
    if len(problems) > before or not isinstance(strict, bool):
        return None
    named = {name for name, _ in rules}
    for name in (*required, *(field for field, _, _ in when)):
        if strict and name not in named:
            problems.append(f"{where}: required field {name!r} is not among its 'fields', which a strict schema needs")
    return Schema(fields=rules, required=required, required_when=when, strict=strict)


def _names(value: Any, key: str, where: str, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(n, str) and n for n in value):
        problems.append(f"{where}: '{key}' must be a list of field names, got {value!r}")
        return ()
    return tuple(value)


def _required_when(value: Any, where: str, problems: list[str]) -> tuple[tuple[str, str, tuple[Any, ...]], ...]:
    """``{field = {other = [values]}}``."""
    if not isinstance(value, dict):
        problems.append(f"{where}: 'required_when' must be a table {{field = {{other = [values]}}}}, got {value!r}")
        return ()
    found = []
    for field, condition in value.items():
        if (not isinstance(condition, dict) or len(condition) != 1
                or not all(isinstance(v, list) and v for v in condition.values())):
            problems.append(f"{where}: 'required_when' of {field!r} must name one other field and its values, "
                            f"as {{mode = [\"i2v\"]}}, got {condition!r}")
            continue
        [(other, values)] = condition.items()
        found.append((str(field), str(other), tuple(values)))
    return tuple(found)


def _rule(value: Any, where: str, problems: list[str]) -> FieldRule:
    if not isinstance(value, dict):
        problems.append(f"{where}: must be a table such as {{type = \"integer\", min = 64}}, got {value!r}")
        return FieldRule()
    _unknown_names(value, _RULE_KEYS, "rule(s)", where, problems)
    types = value.get("type", [])
    types = [types] if isinstance(types, str) else types
    if not isinstance(types, list) or not all(t in TYPES for t in types):
        problems.append(f"{where}: 'type' must be one of {', '.join(TYPES)} (or a list of them), got {value.get('type')!r}")
        types = []
    bounds = {}
    for key in ("min", "max"):
        bound = value.get(key)
        if bound is not None and not _is_number(bound):
            problems.append(f"{where}: '{key}' must be a number, got {bound!r}")
            bound = None
        bounds[key] = bound
    counts = {}
    for key in ("min_length", "max_items"):
        count = value.get(key)
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
            problems.append(f"{where}: '{key}' must be a whole number (0 or more), got {count!r}")
            count = None
        counts[key] = count
    listed = {}
    for key in ("choices", "also"):
        items = value.get(key, [])
        if not isinstance(items, list) or any(isinstance(i, (list, dict)) for i in items):
            problems.append(f"{where}: '{key}' must be a list of values, got {items!r}")
            items = []
        listed[key] = tuple(items)
    return FieldRule(types=tuple(types), low=bounds["min"], high=bounds["max"], choices=listed["choices"],
                     also=listed["also"], min_length=counts["min_length"], max_items=counts["max_items"])


# --- Request schemas: checking a body ---

def refusals(schema: Schema | None, body: Any, *, webhook: bool = True) -> list[dict[str, Any]]:
    """BFL's 422 ``detail`` for ``body`` under ``schema``: one entry per field it refuses (empty when it takes the
    body). ``webhook``: whether the model takes ``webhook_url``/``webhook_secret`` (a model that takes none refuses
    them as fields it does not know, whatever else it allows)."""
    if not isinstance(body, Mapping):
        return [{"loc": ["body"], "msg": "Input should be a valid dictionary or object to extract fields from",
                 "type": "model_attributes_type"}]
    schema = schema or Schema()
    needed = _needed(schema, body)
    errors = []
    for name, rule in schema.fields:
        if name not in body:
            if name in needed:
                errors.append({"loc": ["body", name], "msg": "Field required", "type": "missing"})
        elif (problem := _problem(rule, body[name], required=name in needed)) is not None:
            errors.append({"loc": ["body", name], **problem})
    named = {name for name, _ in schema.fields}
    errors += [{"loc": ["body", name], "msg": "Field required", "type": "missing"}
               for name in schema.required if name not in named and name not in body]
    return errors + _unknown(schema, named, body, webhook)


def unknown_fields(schema: Schema | None, body: Any) -> list[str]:
    """The fields of ``body`` that ``schema`` does not know and does not refuse, in the body's order: what BFL takes
    or ignores unseen (a misspelt ``"colour"``, a field of another model). None for a strict schema, whose unknown
    fields are refusals, for a schema that names no field (it knows none), and for the webhook fields, which fluxhook
    sets itself."""
    if schema is None or schema.strict or not schema.fields or not isinstance(body, Mapping):
        return []
    known = {name for name, _ in schema.fields} | set(schema.required)
    known.update(name for field, other, _ in schema.required_when for name in (field, other))
    return [name for name in body if name not in known and name not in WEBHOOK_FIELDS]


def known_fields(schema: Schema | None) -> tuple[str, ...]:
    """The fields ``schema`` names, in its order."""
    return tuple(name for name, _ in schema.fields) if schema else ()


def _needed(schema: Schema, body: Mapping[str, Any]) -> set[str]:
    """The fields this body must have: the required ones, and those another field's value requires."""
    needed = set(schema.required)
    needed.update(field for field, other, values in schema.required_when if body.get(other) in values)
    return needed


def _unknown(schema: Schema, named: set[str], body: Mapping[str, Any], webhook: bool) -> list[dict[str, Any]]:
    """The refusals of fields the schema does not name: a strict schema's, and webhook fields where BFL takes none."""
    errors = []
    for name, value in body.items():
        if name in WEBHOOK_FIELDS:
            if not webhook:
                errors.append(_extra(name, value))
            elif not isinstance(value, str) and value is not None:
                errors.append({"loc": ["body", name], "msg": "Input should be a valid string", "type": "string_type"})
        elif schema.strict and name not in named:
            errors.append(_extra(name, value))
    return errors


def _extra(name: str, value: Any) -> dict[str, Any]:
    return _with_input({"loc": ["body", name], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"},
                       value)


def _with_input(error: dict[str, Any], value: Any) -> dict[str, Any]:
    """The refused value, as pydantic echoes it, unless it is long (an image in base64) or a container."""
    if isinstance(value, (bool, int, float)) or value is None or (isinstance(value, str) and len(value) <= MAX_ECHO):
        error["input"] = value
    return error


def _problem(rule: FieldRule, value: Any, *, required: bool) -> dict[str, Any] | None:
    if value is None:
        if not required:
            return None
        return _with_input(_type_error(rule.types[0] if rule.types else "string", value), value)
    if value in rule.also and not isinstance(value, bool):
        return None
    read, error = _typed(rule.types, value)
    if error is not None:
        if rule.also:
            expected = " or ".join([_type_word(rule.types), *(repr(a) for a in rule.also)])
            error = {"msg": f"Input should be {expected}", "type": error["type"]}
        return _with_input(error, value)
    if rule.choices and read not in rule.choices:
        expected = _listing(rule.choices)
        return _with_input({"msg": f"Input should be {expected}", "type": "enum", "ctx": {"expected": expected}}, value)
    if _is_number(read):
        if rule.low is not None and read < rule.low:
            return _with_input({"msg": f"Input should be greater than or equal to {_figure(rule.low)}",
                                "type": "greater_than_equal", "ctx": {"ge": rule.low}}, value)
        if rule.high is not None and read > rule.high:
            return _with_input({"msg": f"Input should be less than or equal to {_figure(rule.high)}",
                                "type": "less_than_equal", "ctx": {"le": rule.high}}, value)
    if rule.min_length is not None and isinstance(read, str) and len(read) < rule.min_length:
        plural = "" if rule.min_length == 1 else "s"
        return _with_input({"msg": f"String should have at least {rule.min_length} character{plural}",
                            "type": "string_too_short", "ctx": {"min_length": rule.min_length}}, value)
    if rule.max_items is not None and isinstance(read, list) and len(read) > rule.max_items:
        return {"msg": f"List should have at most {rule.max_items} items after validation, not {len(read)}",
                "type": "too_long", "ctx": {"field_type": "List", "max_length": rule.max_items,
                                            "actual_length": len(read)}}
    return None


def _typed(types: tuple[str, ...], value: Any) -> tuple[Any, dict[str, Any] | None]:
    """``value`` as the first of ``types`` that reads it (pydantic's lax mode), or the first type's error."""
    if not types:
        return value, None
    for kind in types:
        read = _READERS[kind](value)
        if read is not _UNREAD:
            return read, None
    return None, _type_error(types[0], value)


# What a reader of ``_READERS`` gives for a value pydantic's lax mode would not read as its kind.
_UNREAD = object()


def _read_integer(value: Any) -> Any:
    if isinstance(value, (bool, int)):
        return int(value)
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else _UNREAD
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit() and len(value) < 40:
        return int(value)
    return _UNREAD


def _read_number(value: Any) -> Any:
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        try:
            read = float(value)
        except ValueError:
            return _UNREAD
        return read if math.isfinite(read) else _UNREAD
    return _UNREAD


def _read_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
        return value.strip().lower() in _TRUE_WORDS
    return _UNREAD


_READERS = {
    "string": lambda value: value if isinstance(value, str) else _UNREAD,
    "integer": _read_integer,
    "number": _read_number,
    "boolean": _read_boolean,
    "array": lambda value: value if isinstance(value, list) else _UNREAD,
    "object": lambda value: value if isinstance(value, dict) else _UNREAD,
}


def _type_error(kind: str, value: Any) -> dict[str, Any]:
    """pydantic's words for a value that is not of ``kind``."""
    if kind == "integer":
        if isinstance(value, float):
            return {"msg": "Input should be a valid integer, got a number with a fractional part",
                    "type": "int_from_float"}
        if isinstance(value, str):
            return {"msg": "Input should be a valid integer, unable to parse string as an integer",
                    "type": "int_parsing"}
        return {"msg": "Input should be a valid integer", "type": "int_type"}
    if kind == "number":
        if isinstance(value, str):
            return {"msg": "Input should be a valid number, unable to parse string as a number",
                    "type": "float_parsing"}
        return {"msg": "Input should be a valid number", "type": "float_type"}
    if kind == "boolean":
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return {"msg": "Input should be a valid boolean, unable to interpret input", "type": "bool_parsing"}
        return {"msg": "Input should be a valid boolean", "type": "bool_type"}
    if kind == "array":
        return {"msg": "Input should be a valid list", "type": "list_type"}
    if kind == "object":
        return {"msg": "Input should be a valid dictionary", "type": "dict_type"}
    return {"msg": "Input should be a valid string", "type": "string_type"}


def _type_word(types: tuple[str, ...]) -> str:
    words = {"string": "a valid string", "integer": "a valid integer", "number": "a valid number",
             "boolean": "a valid boolean", "array": "a valid list", "object": "a valid dictionary"}
    return " or ".join(words[t] for t in types) if types else "a valid value"


def _listing(values: tuple[Any, ...]) -> str:
    """pydantic's list of allowed values: ``'jpeg', 'png' or 'webp'``."""
    words = [repr(v) if isinstance(v, str) else str(v) for v in values]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _figure(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- Models and the catalog ---

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
    webhook: bool = True  # whether BFL accepts webhook_url/webhook_secret for it (some tools refuse any such field)
    url_life: int | None = None  # seconds its result URLs live; None: by its kind
    inputs: tuple[str, ...] | None = None  # the request fields it reads inputs from, when not input_image..
    uncertain: tuple[str, ...] = ()  # the facts whose figure BFL has not published (bounded on the safe side)
    # BFL's request schema: what its 422 refuses (None: nothing is checked). ``schema_name``: the catalog's
    # ``[schemas.<name>]`` it is read from, when the entry names one rather than holding its own.
    schema: Schema | None = None
    schema_name: str | None = None

    @property
    def input_fields(self) -> tuple[str, ...]:
        """The request fields BFL reads input images from (video keyframes are counted apart)."""
        if self.inputs is not None:
            return self.inputs
        if self.input_images <= 0 or self.kind == "video":
            return ()
        return ("input_image", *(f"input_image_{n}" for n in range(2, self.input_images + 1)))

    def refusals(self, body: Any) -> list[dict[str, Any]]:
        """BFL's 422 ``detail`` for the submission ``body`` to this model (empty: its schema takes it)."""
        return refusals(self.schema, body, webhook=self.webhook)

    def unknown_fields(self, body: Any) -> list[str]:
        """The fields of ``body`` this model's schema does not know, which BFL would take or ignore unseen."""
        return unknown_fields(self.schema, body)

    @property
    def result_url_life(self) -> int:
        """Seconds a result URL of this model lives after BFL finished the task."""
        return self.url_life if self.url_life is not None else URL_LIFE_BY_KIND[self.kind]

    def describe(self) -> dict[str, Any]:
        """As ``GET /v1/models`` lists it (which puts the limit in force, after BFL_MODEL_LIMITS, in ``max_active``)."""
        return {"name": self.name, "kind": self.kind, "max_active": self.max_active,
                "price": self.price.describe() if self.price else None, "max_output_mp": self.max_output_mp,
                "input_images": self.input_images, "max_seconds": self.max_seconds, "region": self.region,
                "webhook": self.webhook, "url_life": self.result_url_life, "uncertain": list(self.uncertain)}


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
        return difflib.get_close_matches(name[:100].lower(), list(self.models), n=count, cutoff=0.6)

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


def _credits(figure: Any) -> bool:
    return not isinstance(figure, bool) and isinstance(figure, (int, float)) and math.isfinite(figure) and figure >= 0


def _price(value: Any, where: str, problems: list[str]) -> Price | None:
    if value is None:
        return None
    rule = value.get("rule") if isinstance(value, dict) else None
    if rule not in PRICE_RULES:
        problems.append(f"{where}: 'price' must be a table with 'rule' one of {', '.join(PRICE_RULES)}, got {value!r}")
        return None
    if _unknown_names(value, _PRICE_FIELDS, "price field(s)", where, problems):
        return None
    if "rates" in value:
        return _table_price(rule, value, where, problems)
    figures: dict[str, Any] = {}
    for key in PRICE_RULES[rule]:
        figure = value.get(key)
        if not _credits(figure):
            problems.append(f"{where}: price '{key}' must be a number of credits (0 or more), got {figure!r}")
            return None
        figures[key] = float(figure)
    return Price(rule, **figures, per_megapixel=value.get("per_megapixel") is True)


def _text_pairs(value: Any, what: str, where: str, problems: list[str]) -> tuple[tuple[str, str], ...] | None:
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(isinstance(v, (str, bool, int, float)) for v in value.values()):
        problems.append(f"{where}: price '{what}' must be a table of field values, got {value!r}")
        return None
    return tuple((field_value(k), field_value(v)) for k, v in value.items())


def _table_price(rule: str, value: dict, where: str, problems: list[str]) -> Price | None:
    """A price whose figure depends on request fields: ``by``, ``rates`` and optional ``defaults``, ``aliases``."""
    by, rates = value.get("by"), value.get("rates")
    if rule not in TABLE_RULES:
        problems.append(f"{where}: price 'rates' is for the rules {', '.join(TABLE_RULES)}, not {rule!r}")
        return None
    if not isinstance(by, list) or not by or not all(isinstance(f, str) and f for f in by):
        problems.append(f"{where}: price 'by' must list the request fields its rates depend on, got {by!r}")
        return None
    if not isinstance(rates, dict) or not rates:
        problems.append(f"{where}: price 'rates' must be a table of credits by field values, got {rates!r}")
        return None
    table = []
    for key, figure in rates.items():
        if len(str(key).split(KEY_SEPARATOR)) != len(by) or not _credits(figure):
            problems.append(f"{where}: price rate {key!r} must name one value of each of {', '.join(by)} "
                            f"(joined by '/') and be a number of credits (0 or more), got {figure!r}")
            return None
        table.append((str(key).strip().lower(), float(figure)))
    defaults = _text_pairs(value.get("defaults"), "defaults", where, problems)
    aliases = _text_pairs(value.get("aliases"), "aliases", where, problems)
    if defaults is None or aliases is None:
        return None
    highest = max(figure for _, figure in table)
    return Price(rule, credits=highest, by=tuple(by), rates=tuple(table), defaults=defaults, aliases=aliases,
                 per_megapixel=value.get("per_megapixel") is True)


def parse_entry(name: str, entry: Any, where: str, problems: list[str]) -> Model | None:
    """One entry of a catalog file; None (and its problems said) when it is not one."""
    where = f"{where}: model {name!r}"
    if not MODEL.fullmatch(name):
        problems.append(f"{where}: not a BFL model name (lower-case letters, digits, '.' and '-')")
        return None
    if not isinstance(entry, dict):
        problems.append(f"{where}: must be a table of its facts")
        return None
    _unknown_names(entry, _FIELDS, "field(s)", where, problems)
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
    webhook = entry.get("webhook", True)
    if not isinstance(webhook, bool):
        problems.append(f"{where}: 'webhook' must be true or false, got {webhook!r}")
        webhook = True
    listed = {}
    for key in ("inputs", "uncertain"):
        found = entry.get(key)
        if found is not None and (not isinstance(found, list) or not all(isinstance(f, str) and f for f in found)):
            problems.append(f"{where}: '{key}' must be a list of names, got {found!r}")
            found = None
        listed[key] = tuple(found) if found is not None else None
    schema, schema_name = _schema_of(entry.get("schema"), where, problems)
    return Model(name=name, kind=kind, price=_price(entry.get("price"), where, problems),
                 schema=schema, schema_name=schema_name,
                 webhook=webhook, url_life=_number(entry, "url_life", where, problems, whole=True),
                 inputs=listed["inputs"], uncertain=listed["uncertain"] or (),
                 max_output_mp=_number(entry, "max_output_mp", where, problems, default=4.0),
                 input_images=inputs, max_input_mp=_number(entry, "max_input_mp", where, problems, default=4.0),
                 max_active=_number(entry, "max_active", where, problems, whole=True),
                 max_seconds=_number(entry, "max_seconds", where, problems, whole=True),
                 default_seconds=_number(entry, "default_seconds", where, problems, whole=True), region=region,
                 default_mp=_number(entry, "default_mp", where, problems, default=1.05))


def _schema_of(value: Any, where: str, problems: list[str]) -> tuple[Schema | None, str | None]:
    """An entry's ``schema``: the name of one of the catalog's ``[schemas.<name>]`` (read once all files are merged,
    ``resolved``), or a table of its own."""
    if value is None:
        return None, None
    if isinstance(value, str) and value:
        return None, value
    if isinstance(value, dict):
        return parse_schema(value, f"{where}: schema", problems), None
    problems.append(f"{where}: 'schema' must name one of the catalog's [schemas] or be a table, got {value!r}")
    return None, None


def parse_schemas(document: Any, where: str, problems: list[str]) -> dict[str, Schema]:
    """The named request schemas of a catalog document (``{"schemas": {name: schema}}``; none is fine)."""
    schemas = document.get("schemas", {}) if isinstance(document, dict) else {}
    if not isinstance(schemas, dict):
        problems.append(f"{where}: 'schemas' must be a table of request schemas by name")
        return {}
    found = {}
    for name, value in schemas.items():
        schema = parse_schema(value, f"{where}: schema {name!r}", problems)
        if schema is not None:
            found[str(name)] = schema
    return found


def resolved(models: dict[str, Model], schemas: Mapping[str, Schema], where: str,
             problems: list[str]) -> dict[str, Model]:
    """The models (of the file ``where``) with the schema each names read from ``schemas`` (the shipped ones, an
    operator's file's over them)."""
    found = {}
    for name, model in models.items():
        if model.schema_name is not None:
            if model.schema_name not in schemas:
                problems.append(f"{where}: model {name!r}: 'schema' names no schema ({model.schema_name!r}); known: "
                                f"{', '.join(sorted(schemas))}")
            model = replace(model, schema=schemas.get(model.schema_name))
        found[name] = model
    return found


def parse(document: Any, where: str, problems: list[str]) -> dict[str, Model]:
    """The models of a catalog document (``{"models": {name: entry}}``; a file of ``schemas`` alone may have none)."""
    models = document.get("models", {} if "schemas" in document else None) if isinstance(document, dict) else None
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
    shipped = tomllib.loads(SHIPPED.read_text("utf-8"))
    models, schemas = parse(shipped, SHIPPED.name, problems), parse_schemas(shipped, SHIPPED.name, problems)
    added: dict[str, Model] = {}
    if extra:
        document = read_file(extra, problems)
        if document is not None:
            added = parse(document, "BFL_MODELS_FILE", problems)
            schemas.update(parse_schemas(document, "BFL_MODELS_FILE", problems))
    models = resolved(models, schemas, SHIPPED.name, problems)
    models.update(resolved(added, schemas, "BFL_MODELS_FILE", problems))
    return Catalog(models)


def _shipped() -> Catalog:
    problems: list[str] = []
    found = load(None, problems)
    if problems:  # a bug of fluxhook's own file
        raise ValueError("; ".join(problems))
    return found


# The catalog as shipped, before any BFL_MODELS_FILE.
SHIPPED_CATALOG = _shipped()


@functools.cache
def _with_file(extra: str | None) -> Catalog:
    problems: list[str] = []
    found = load(extra, problems)
    return SHIPPED_CATALOG if problems else found  # a bad file stops the process at start (Config)


def in_force() -> Catalog:
    """The catalog this process runs with: the shipped one with BFL_MODELS_FILE merged over it, read once; for the
    pure rules that are given a model's name alone (how long its result URLs live)."""
    return _with_file(os.environ.get("BFL_MODELS_FILE") or None)


def takes_webhook(model: Model | None) -> bool:
    """Whether a task of ``model`` may be sent with ``webhook_url``/``webhook_secret``: a model the catalog says
    takes none (BFL answers 422 to them) is sent without and followed by polling from its submission."""
    return model is None or model.webhook


def without_webhook(model: Model | None, body: Mapping[str, Any]) -> dict[str, Any]:
    """The submission ``body`` as BFL accepts it for ``model``: without webhook fields when it takes none."""
    if takes_webhook(model):
        return dict(body)
    return {name: value for name, value in body.items() if name not in WEBHOOK_FIELDS}


def first_poll_at(model: Model | None, submitted_at: float, grace: float, *, watched: bool = False) -> float:
    """When a just-submitted task is first polled: after CALLBACK_GRACE_SECONDS (``grace``) when a callback is
    awaited, or sooner, as a running job's state must reach it (``core.live``: sooner still when someone watches
    it); at once when its model takes no webhook (nothing would ever call back)."""
    if not takes_webhook(model):
        return submitted_at
    return submitted_at + min(grace, WATCHED_POLL_DUE if watched else UNWATCHED_POLL_INTERVAL)
