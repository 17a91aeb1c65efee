"""Strict input: a field or query parameter the API does not define is refused by name, never silently ignored
(a top-level ``"deadline"`` that did nothing, a ``?prompt=`` that returned the unfiltered list); and the whole numbers
a request carries (a query value, a header, a form field), read one way everywhere.

Python's ``int()`` is lenient where a request should not be: it takes a sign, surrounding spaces, underscores
(``1_0``) and any script's digits (``٥``), so one number has many spellings, each a distinct URL a cache keeps
apart; and it refuses text of more than 4,300 digits with a ``ValueError`` that, uncaught, answers 500. Here the
length is bounded before any digit is read, and a number has one spelling."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from fluxhook.core.errors import UnknownField

# How many unknown names one message lists.
NAMED_AT_MOST = 5


def unknown_names(given: Iterable[str], defined: Sequence[str]) -> list[str]:
    """The names in ``given`` that are not ``defined``, in the order given."""
    return [name for name in given if name not in defined]


def refuse_unknown(given: Iterable[str], defined: Sequence[str], *, where: str, kind: str = "field",
                   hints: Mapping[str, str] | None = None, advice: str = "") -> None:
    """UnknownField naming the first name in ``given`` that is not ``defined`` (and up to ``NAMED_AT_MOST`` more):
    the ``hints`` entry of that name if it has one, else ``advice``, then what ``where`` takes. ``kind``: what a
    name is there ('field', 'query parameter')."""
    unknown = unknown_names(given, defined)
    if not unknown:
        return
    first = unknown[0]
    names = ", ".join(repr(name[:60]) for name in unknown[:NAMED_AT_MOST])
    hint = (hints or {}).get(first) or advice
    raise UnknownField(f"unknown {kind}{'s' if len(unknown) > 1 else ''} {names}: {hint + ' ' if hint else ''}"
                       f"({where} takes {', '.join(defined)})", field=first)


def decimal(text: str, most: int) -> int | None:
    """The number ``text`` spells if it is a whole number from 0 to ``most`` in plain decimal: ASCII digits only, no
    sign, space, underscore or leading zero (``0`` itself is one); None for any other text. The caller's refusal names
    the text and what it allows."""
    if not 0 < len(text) <= len(str(most)) or not text.isascii() or not text.isdigit():
        return None
    if text[0] == "0" and len(text) > 1:
        return None
    number = int(text)
    return number if number <= most else None
