"""Strict input (fluxhook/core/strict_input.py): what an API does not define is refused by name; whole numbers read
from a request have one spelling each, and a length bounded before a digit is read, so text past int()'s 4,300 digits
is refused like any other, never a ValueError."""

from __future__ import annotations

import pytest

from fluxhook.core.errors import UnknownField
from fluxhook.core.strict_input import decimal, refuse_unknown


@pytest.mark.parametrize(("text", "most", "number"), [
    ("0", 10, 0), ("7", 10, 7), ("10", 10, 10), ("512", 2048, 512), ("2048", 2048, 2048),
    ("999999999999999999", 10**18 - 1, 10**18 - 1),
])
def test_plain_digits_up_to_the_bound_are_read(text, most, number):
    assert decimal(text, most) == number


@pytest.mark.parametrize("text", [
    "", " 5", "5 ", "+5", "-5", "05", "00", "1_0", "5.0", "5e1", "0x10", "٥", "²", "５", "five", "5\x00",
    "9" * 5, "9" * 4301, "1" + "0" * 100_000,
])
def test_every_other_spelling_and_anything_past_the_bound_is_none(text):
    assert decimal(text, 2048) is None


def test_strict_input_names_the_first_unknown_field_and_says_what_to_do():
    refuse_unknown({"model": 1, "input": 2}, ("model", "input"), where="POST /v1/jobs")  # nothing unknown
    with pytest.raises(UnknownField) as refused:
        refuse_unknown({"model": 1, "prompt": 2, "width": 3}, ("model", "input"), where="POST /v1/jobs",
                       hints={"deadline": "use Cancel-After"}, advice="BFL's fields go under 'input'")
    assert refused.value.field == "prompt"
    assert refused.value.message == ("unknown fields 'prompt', 'width': BFL's fields go under 'input' "
                                     "(POST /v1/jobs takes model, input)")
    with pytest.raises(UnknownField, match="^unknown field 'deadline': use Cancel-After "):
        refuse_unknown({"deadline": "5m"}, ("model",), where="POST /v1/jobs", hints={"deadline": "use Cancel-After"},
                       advice="other")
