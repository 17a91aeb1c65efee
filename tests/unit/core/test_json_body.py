"""fluxhook/core/json_body.py's strict rules: a body read a piece at a time means what it means read
whole (json_body.loads), at every place a piece may end, refusals included (a key given twice, NaN, a lone surrogate,
nesting past 32); and what is held while it is read is the values parsed, not the body's text. What an API does not
define is refused by name; whole numbers read from a request have one spelling each, and a length bounded before a
digit is read, so text past int()'s 4,300 digits is refused like any other, never a ValueError."""

from __future__ import annotations

import io
import json
import random
import tracemalloc

import pytest

from fluxhook.core import json_body
from fluxhook.core.errors import InvalidRequest, UnknownField
from fluxhook.core.json_body import Stream, decimal, load_object, ndjson_lines, refuse_unknown

BODIES = [
    b'{}',
    b' { "a" : 1 , "b":[1,2,3] , "c" : {"d": [ ]}, "e": 12345678901234567890123 } \n',
    b'{"model": "flux-2-pro", "items": [{"input": {"prompt": "\\u00e9\xc3\xa9\xe2\x80\xa8"}}, {"input": {}}]}',
    b'{"a": 1.5e3, "b": -0, "c": null, "d": false, "e": [1.25e-3, -12, 0.5, true]}',
    b'{"items": [[' + b"[" * 28 + b"]" * 28 + b']]}',  # 31 deep: allowed
]
REFUSED = [
    b'{"a":1,"a":2}', b'{"x":{"b":1,"b":2}}', b'{"items": [{"input": {"p": "y", "p": "z"}}]}', b'{"a":1} x',
    b'{"a":1,}', b'[1]', b'', b'{"a":NaN}', b'{"a": [Infinity]}', b'{"a":"\\ud800"}', b'{"a":"\xff"}', b'{"a": tru}',
    b'{"a" 1}', b'{"a": [1 2]}', b'{"a": -}', b'{"items": [' + b"[" * 32 + b"]" * 32 + b']}', b'{"a": 1 "b": 2}',
    b'{"a": "unterminated}',
]


def _pieces(body: bytes, size: int):
    return io.BytesIO(body).read if size <= 0 else _Trickle(body, size).read


class _Trickle:
    """A body that gives at most ``size`` bytes a read, whatever is asked."""

    def __init__(self, body: bytes, size: int):
        self.stream, self.size = io.BytesIO(body), size

    def read(self, n: int) -> bytes:
        return self.stream.read(min(n, self.size))


def _outcome(read):
    try:
        return "ok", load_object(read, chunk=7)
    except InvalidRequest as exc:
        return "refused", exc.message


@pytest.mark.parametrize("body", BODIES)
def test_a_body_read_in_pieces_of_any_size_is_the_value_it_is_read_whole(body):
    whole = json_body.loads(body)
    for size in (1, 2, 3, 5, 13, 0):
        assert load_object(_pieces(body, size), chunk=7) == whole, size


@pytest.mark.parametrize("body", REFUSED)
def test_a_body_refused_whole_is_refused_in_pieces_and_says_why(body):
    try:
        whole = json_body.loads(body)
    except InvalidRequest as exc:
        whole = exc.message
    for size in (1, 3, 0):
        outcome, message = _outcome(_pieces(body, size))
        assert outcome == "refused", (size, message)
        if isinstance(whole, str) and "not valid JSON" not in whole:  # the same words for what is not strict JSON
            assert message == whole, size


def test_random_bodies_and_their_damaged_copies_read_alike_in_pieces_and_whole():
    rng = random.Random(83)

    def value(depth=0):
        roll = rng.random()
        if depth > 3 or roll < 0.3:
            return rng.choice([0, -1, 1.5, 1e10, 2**70, "x", "é\u2028\"\\", True, None, ""])
        if roll < 0.6:
            return [value(depth + 1) for _ in range(rng.randint(0, 4))]
        return {f"k{i}": value(depth + 1) for i in range(rng.randint(0, 4))}

    for _ in range(400):
        body = json.dumps({f"f{i}": value() for i in range(rng.randint(0, 5))}, indent=rng.choice([None, 1])).encode()
        if rng.random() < 0.4:
            at = rng.randrange(len(body))
            body = body[:at] + rng.choice([b",", b"}", b"", b'"', b"1", b" ", b"]"]) + body[at + 1:]
        try:
            whole = ("ok", json_body.loads(body))
        except InvalidRequest:
            whole = ("refused", None)
        for size in (1, 4):
            outcome = _outcome(_pieces(body, size))
            assert outcome[0] == whole[0] and (outcome[0] == "refused" or outcome == whole), (body, size)


def test_a_repeated_key_is_refused_by_name_in_every_json_body():
    for body in (b'{"model": "a", "model": "b"}', b'{"input": {"prompt": "x", "prompt": "y"}}'):
        with pytest.raises(InvalidRequest) as refused:
            json_body.loads(body)
        assert "is given more than once" in refused.value.message
        assert refused.value.message.startswith('the key "model"' if b"model" in body else 'the key "prompt"')
    long_name = "k" * 500
    with pytest.raises(InvalidRequest) as refused:
        json_body.loads(json.dumps({"a": 1}).replace("}", f', "{long_name}": 1, "{long_name}": 2}}'))
    assert len(refused.value.message) < 200 and "k" * 60 + '..."' in refused.value.message
    assert json_body.loads(b'[{"a": 1}, {"a": 1}]') == [{"a": 1}, {"a": 1}]  # the same key in two objects is fine


def test_what_is_held_while_a_large_body_is_read_is_its_values_not_its_text():
    items = [{"input": {"prompt": f"item {i} " + "x" * 10_000}} for i in range(1_000)]
    body = json.dumps({"model": "flux-2-pro", "items": items}).encode()  # 10 MB
    del items
    parsed_size = 1_000 * 10_060  # the prompts' characters, each held once as a str

    tracemalloc.start()
    try:
        streamed = load_object(io.BytesIO(body).read)
        _, streamed_peak = tracemalloc.get_traced_memory()
        del streamed
        tracemalloc.reset_peak()
        whole = json_body.loads(body)
        _, whole_peak = tracemalloc.get_traced_memory()
        del whole
    finally:
        tracemalloc.stop()
    assert streamed_peak < parsed_size * 1.15, streamed_peak  # the values, and a piece of text at a time
    assert whole_peak > parsed_size * 1.8, whole_peak  # read whole: its text beside its values


def test_ndjson_lines_end_at_newline_alone_whatever_the_pieces():
    body = '{"a": 1}\r\n\n{"b": "\u2028x"}\n{"c": 3}'.encode()
    for size in (1, 2, 5, 0):
        lines = list(ndjson_lines(_pieces(body, size), chunk=4))
        assert lines == [(1, b'{"a": 1}\r'), (2, b""), (3, '{"b": "\u2028x"}'.encode()), (4, b'{"c": 3}')], size
    assert list(ndjson_lines(io.BytesIO(b"").read)) == []
    assert list(ndjson_lines(io.BytesIO(b"x\n").read)) == [(1, b"x")]


def test_a_streamed_arrays_elements_are_handed_on_one_at_a_time_and_none_is_kept():
    items = [{"input": {"prompt": f"item {i} " + "x" * 10_000}} for i in range(1_000)]
    body = json.dumps({"model": "flux-2-pro", "items": items, "tags": [1, 2]}).encode()  # 10 MB
    del items
    seen: list[int] = []
    stream = Stream("items", lambda item: seen.append(len(item["input"]["prompt"])))

    tracemalloc.start()
    try:
        value = load_object(io.BytesIO(body).read, stream=stream, chunk=4096)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert value == {"model": "flux-2-pro", "items": stream, "tags": [1, 2]}  # another array is kept whole
    assert len(seen) == 1_000 and seen[0] == len("item 0 ") + 10_000
    assert peak < 200_000, peak  # about one item, not the 10 MB of them
    with pytest.raises(InvalidRequest, match='the key "items"'):
        load_object(io.BytesIO(b'{"items": [1], "items": [2]}').read, stream=Stream("items", lambda item: None))
    assert load_object(io.BytesIO(b'{"items": 5}').read, stream=stream) == {"items": 5}  # no array: the value


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
