"""Strict JSON for request bodies (pure): finite numbers, valid Unicode, bounded nesting.

Python's json module accepts NaN and Infinity (which fluxhook would then serve back as
invalid JSON), lone surrogates (which Redis cannot store), and nesting deep enough to
exhaust the stack when the value is encoded again; all of them are refused here.
"""

from __future__ import annotations

import json
from typing import Any

from fluxhook.errors import InvalidRequest

MAX_DEPTH = 32
# A long string's encoding is checked this many characters at a time, not copied whole.
_SLICE = 1024 * 1024


class _NotANumber(ValueError):
    """NaN or Infinity in the body: Python reads them, JSON has no such numbers."""


def _no_constants(name: str) -> Any:
    raise _NotANumber(name)


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Decode ``raw``; raise InvalidRequest unless it is strict JSON nested at most ``max_depth`` deep."""
    try:
        value = json.loads(raw, parse_constant=_no_constants)
    except RecursionError:
        raise InvalidRequest(f"the JSON is nested more than {max_depth} levels deep") from None
    except _NotANumber as exc:
        raise InvalidRequest(f"{exc} is not a JSON number: send a number or null") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc.msg.lower()} at line {exc.lineno}, column {exc.colno} "
                             "(a trailing comma or single quotes, perhaps)") from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("the body is not valid JSON: send it as UTF-8 text") from None
    _check(value, max_depth)
    return value


def _check(value: Any, max_depth: int) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _valid_text(item)
        elif isinstance(item, (dict, list)):
            if depth > max_depth:
                raise InvalidRequest(f"the JSON is nested more than {max_depth} levels deep")
            if isinstance(item, dict):
                for key, child in item.items():
                    _valid_text(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def _valid_text(text: str) -> None:
    if text.isascii():  # most of a large body (base64): checked without a copy
        return
    try:
        for start in range(0, len(text), _SLICE):
            text[start:start + _SLICE].encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest("the JSON holds a string that is not valid Unicode (a lone surrogate)") from None
