"""The shape of each item of ``POST /v1/batches`` (receiver/batches.py, SPEC §18): every bad item found, each problem
with its field and what to do; a model's fields where ``input`` belongs told to go under it."""

from __future__ import annotations

import pytest

from receiver.batches import _items, item_problems


def test_a_good_item_has_no_problem():
    assert item_problems({"input": {"prompt": "a fox"}, "metadata": {"sku": "F-1"}}) == []


@pytest.mark.parametrize(("item", "expected"), [
    ({"prompt": "a fox"}, [("prompt", "put 'prompt' under 'input'")]),
    ({"prompt": "a fox", "width": 512}, [("prompt", "put 'prompt' under 'input'"), ("width", "put 'width' under")]),
    ({"input": {"prompt": "a"}, "seed": 1}, [("seed", "an item holds 'input' and 'metadata' only, not 'seed'")]),
    ({}, [("input", "give 'input'")]),
    ({"input": {}}, [("input", "'input' must be a non-empty JSON object")]),
    ({"input": "a fox"}, [("input", "'input' must be a non-empty JSON object")]),
    ({"input": {"prompt": "a", "webhook_url": "x"}}, [("input.webhook_url", "fluxhook sets its own")]),
    ({"input": {"prompt": "a"}, "metadata": [1]}, [("metadata", "'metadata' must be a JSON object")]),
    ("a fox", [("item", "an item is a JSON object")]),
])
def test_each_problem_names_its_field_and_what_to_do(item, expected):
    problems = item_problems(item)

    assert [field for field, _ in problems] == [field for field, _ in expected]
    for (_, said), (_, words) in zip(problems, expected, strict=True):
        assert words in said, said


def test_every_bad_item_is_found_and_its_place_kept_for_the_good_ones():
    made, refused = _items([{"input": {"prompt": "ok 0"}}, {"prompt": "bad 1"}, {"input": {"prompt": "ok 2"}},
                            {"input": {}, "n": 1}])

    assert [item.input for item in made] == [{"prompt": "ok 0"}, {}, {"prompt": "ok 2"}, {}]
    assert [(r["index"], r["field"]) for r in refused] == [(1, "prompt"), (3, "n"), (3, "input")]
