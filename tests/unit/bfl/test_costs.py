"""BFL's price of a task, read from its answers (pure): every unusable figure is unknown, never an error."""

from __future__ import annotations

import math

import pytest

from fluxhook.bfl.costs import MAX_CREDITS, Cost, parse_cost, result_cost


def test_a_submission_answer_gives_credits_and_megapixels():
    answer = {"id": "t1", "polling_url": "https://api.bfl.ai/v1/get_result?id=t1", "cost": 3.0, "input_mp": 1.0,
              "output_mp": 1.17}
    assert parse_cost(answer) == Cost(credits=3.0, input_mp=1.0, output_mp=1.17)
    assert parse_cost({"cost": 7}) == Cost(credits=7.0)
    assert parse_cost({"cost": 0, "input_mp": 0, "output_mp": 0}) == Cost(0.0, 0.0, 0.0)


@pytest.mark.parametrize("value", [None, "3.0", "", True, False, -0.5, -1, math.nan, math.inf, -math.inf,
                                   MAX_CREDITS + 1, 1e300, 10**400, [3], {"credits": 3}])
def test_an_unusable_figure_is_unknown(value):
    assert parse_cost({"cost": value}) is None
    assert parse_cost({"cost": value, "output_mp": 1.0}) == Cost(credits=None, output_mp=1.0)
    assert parse_cost({"cost": 2.5, "input_mp": value, "output_mp": value}) == Cost(credits=2.5)


def test_no_figures_at_all_is_no_cost():
    for answer in ({}, {"id": "t1"}, None, "cost", [1, 2], {"cost": "free", "input_mp": "a", "output_mp": -2}):
        assert parse_cost(answer) is None


def test_figures_are_rounded_as_bfl_states_them():
    assert parse_cost({"cost": 0.1 + 0.2, "output_mp": 1.23456789}) == Cost(credits=0.3, output_mp=1.2346)


def test_a_result_may_carry_the_price_beside_its_status_or_inside_result():
    assert result_cost({"id": "t", "status": "Ready", "cost": 0.85, "result": {"sample": "x"}}) == Cost(credits=0.85)
    assert result_cost({"id": "t", "status": "Ready", "result": {"sample": "x", "cost": 4}}) == Cost(credits=4.0)
    assert result_cost({"id": "t", "status": "Ready", "result": {"sample": "x"}}) is None
    assert result_cost({"id": "t", "status": "Ready", "result": "not an object"}) is None


def test_only_known_figures_become_record_fields():
    assert Cost(credits=3.0, output_mp=1.0).fields() == {"cost_credits": 3.0, "cost_output_mp": 1.0}
    assert Cost().fields() == {}
