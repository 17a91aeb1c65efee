"""Whole numbers a request carries (a query value, a header, a form field), read one way everywhere.

Python's ``int()`` is lenient where a request should not be: it takes a sign, surrounding spaces, underscores
(``1_0``) and any script's digits (``٥``), so one number has many spellings, each a distinct URL a cache keeps
apart; and it refuses text of more than 4,300 digits with a ``ValueError`` that, uncaught, answers 500. Here the
length is bounded before any digit is read, and a number has one spelling."""

from __future__ import annotations


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
