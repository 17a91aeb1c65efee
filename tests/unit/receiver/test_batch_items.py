"""The shape of each item of ``POST /v1/batches`` (receiver/batches.py, docs/api.md): every bad item found, each problem
with its field and what to do; a model's fields where ``input`` belongs told to go under it. Each item checked and
spooled as the body is read (receiver/batch_body.py), and the batch's fingerprint for an ``Idempotency-Key``."""

from __future__ import annotations

import pytest

from receiver.batch_body import BatchBody
from receiver.batches import item_problems
from receiver.idempotency_keys import fingerprint


def test_a_good_item_has_no_problem():
    assert item_problems({"input": {"prompt": "a fox"}, "metadata": {"sku": "F-1"}}) == []


@pytest.mark.parametrize(("item", "expected"), [
    ({"prompt": "a fox"}, [("prompt", "put 'prompt' under 'input'")]),
    ({"prompt": "a fox", "width": 512}, [("prompt", "put 'prompt' under 'input'"), ("width", "put 'width' under")]),
    ({"input": {"prompt": "a"}, "seed": 1}, [("seed", "an item holds 'input', 'metadata' and 'end_user' only, not 'seed'")]),
    ({}, [("input", "give 'input'")]),
    ({"input": {}}, [("input", "'input' must be a non-empty JSON object")]),
    ({"input": "a fox"}, [("input", "'input' must be a non-empty JSON object")]),
    ({"input": {"prompt": "a", "webhook_url": "x"}}, [("input.webhook_url", "fluxhook sets its own")]),
    ({"input": {"prompt": "a"}, "metadata": [1]}, [("metadata", "'metadata' must be a JSON object")]),
    ({"input": {"prompt": "a"}, "end_user": "x" * 129}, [("end_user", "'end_user' must be a string of 1 to 128")]),
    ("a fox", [("item", "an item is a JSON object")]),
])
def test_each_problem_names_its_field_and_what_to_do(item, expected):
    problems = item_problems(item)

    assert [field for field, _ in problems] == [field for field, _ in expected]
    for (_, said), (_, words) in zip(problems, expected, strict=True):
        assert words in said, said


def test_every_bad_item_is_found_and_its_place_kept_for_the_good_ones():
    body = _read([{"input": {"prompt": "ok 0"}}, {"prompt": "bad 1"}, {"input": {"prompt": "ok 2"}},
                  {"input": {}, "n": 1}])

    items = [item for trip in body.items.trips(10) for item in trip]
    assert [item and item.input for item in items] == [{"prompt": "ok 0"}, None, {"prompt": "ok 2"}, None]
    assert [(r["index"], r["field"]) for r in body.items.problems] == [(1, "prompt"), (3, "n"), (3, "input")]


def test_the_same_batch_has_the_same_fingerprint_whatever_its_keys_order_and_another_batch_another():
    fields = {"model": "flux-2-pro", "metadata": {"run": 1}}
    first = _read([{"input": {"prompt": "a", "seed": 1}, "metadata": {"sku": 1}}, {"input": {"prompt": "b"}}], fields)
    same = _read([{"metadata": {"sku": 1}, "input": {"seed": 1, "prompt": "a"}}, {"input": {"prompt": "b"}}],
                 {"metadata": {"run": 1}, "model": "flux-2-pro"})
    others = [_read([{"input": {"prompt": "a", "seed": 1}, "metadata": {"sku": 1}}], fields),
              _read([{"input": {"prompt": "b"}}, {"input": {"prompt": "a", "seed": 1}, "metadata": {"sku": 1}}], fields),
              _read([{"input": {"prompt": "a", "seed": 1}, "metadata": {"sku": 1}}, {"input": {"prompt": "b"}}],
                    {**fields, "model": "flux-dev"}),
              _read([1, 2]), _read([12])]  # items never run together
    prints = {fingerprint("POST", "/v1/batches", body.fingerprinted()) for body in [first, *others]}

    assert fingerprint("POST", "/v1/batches", first.fingerprinted()) == \
        fingerprint("POST", "/v1/batches", same.fingerprinted())
    assert len(prints) == 1 + len(others)


def _read(items: list, fields: dict | None = None) -> BatchBody:
    """A body of ``items`` and ``fields``, as ``batch_body.read`` fills one, with an Idempotency-Key."""
    body = BatchBody(item_problems, keyed=True)
    body.fields, body.listed = dict(fields or {}), True
    for item in items:
        body.add(item)
    return body
