"""The request schema of a BFL model, and the fields of a body it refuses, in BFL's own 422 shape (pure).

BFL's API is FastAPI over pydantic: a body its schema refuses is answered ``422`` with ``{"detail": [...]}``, one
``{"loc": ["body", <field>], "msg", "type"}`` per refused field (with ``input`` and ``ctx`` where pydantic gives
them), in the schema's field order, fields it does not know last. The schemas live in the model catalog
(``catalog.toml``, ``[schemas.<name>]``), each model naming its own; this module reads a schema's entry and checks a
body against it, as pydantic's lax mode reads JSON: ``"1024"`` and ``1024.0`` are whole numbers, ``"true"`` and
``1`` are booleans. A field the schema does not name passes unless the schema is ``strict``; ``null`` passes for a
field that is not required. Only what the schema says is refused: types, ranges, allowed values, lengths, and
required fields (always, or ``required_when`` another field has one of some values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

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


# ---------------------------------------------------------------- reading a schema's catalog entry

def parse(value: Any, where: str, problems: list[str]) -> Schema | None:
    """A schema from its catalog entry (``{"fields": {name: rule}, "required": [...], ...}``); None, and each
    problem said, when it is not one."""
    if not isinstance(value, dict):
        problems.append(f"{where}: a schema must be a table with 'fields', got {value!r}")
        return None
    unknown = sorted(set(value) - _SCHEMA_KEYS)
    if unknown:
        problems.append(f"{where}: unknown schema field(s) {', '.join(unknown)}; known: {', '.join(sorted(_SCHEMA_KEYS))}")
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
    unknown = sorted(set(value) - _RULE_KEYS)
    if unknown:
        problems.append(f"{where}: unknown rule(s) {', '.join(unknown)}; known: {', '.join(sorted(_RULE_KEYS))}")
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


# ---------------------------------------------------------------- checking a body

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
    return [name for name in body if name not in known and name not in _WEBHOOK_FIELDS]


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
        if name in _WEBHOOK_FIELDS:
            if not webhook:
                errors.append(_extra(name, value))
            elif not isinstance(value, str) and value is not None:
                errors.append({"loc": ["body", name], "msg": "Input should be a valid string", "type": "string_type"})
        elif schema.strict and name not in named:
            errors.append(_extra(name, value))
    return errors


_WEBHOOK_FIELDS = ("webhook_url", "webhook_secret")


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
        read = _read(kind, value)
        if read is not _UNREAD:
            return read, None
    return None, _type_error(types[0], value)


_UNREAD = object()


def _read(kind: str, value: Any) -> Any:
    """``value`` as pydantic's lax mode reads a JSON value as ``kind``; ``_UNREAD`` when it would not."""
    return _READERS[kind](value)


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
