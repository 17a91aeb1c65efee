"""Why a queued job waits (fluxhook/core/wait_reasons.py): the reasons' words, their JSON, and the rule that names the
reason of a job in line from the slots as they are. The reasons read from a real Redis and recorded by the budget and
BFL's refusals: tests/unit/lifecycle/test_waits.py."""

from __future__ import annotations

import pytest

from fluxhook.core import job as st
from fluxhook.core.wait_reasons import (
    DESCRIPTIONS,
    LineState,
    Place,
    Waiting,
    WaitReason,
    describe,
    in_line,
    waiting,
)

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def _line(**changes) -> LineState:
    """A job in line whose pool and owner have room: nothing but BFL's slots (all taken, or one about to be given)
    holds it back."""
    state = dict(owner_held=0, owner_cap=None, pool_held=3, pool_limit=24, total_limit=24)
    state.update(changes)
    return LineState(**state)


def test_the_reasons_are_the_specs_words_each_with_its_description():
    assert [str(r) for r in WaitReason] == ["bfl_slots", "model_limit", "key_max_active", "key_daily_credits",
                                           "daily_credits", "budget_settling", "bfl_capacity", "account_cooling",
                                           "end_user_max_active", "end_user_daily_credits", "storage"]
    assert set(DESCRIPTIONS) == set(WaitReason) and all(DESCRIPTIONS.values())
    assert describe("model_limit") == DESCRIPTIONS[WaitReason.MODEL_LIMIT] and describe("not_a_reason") == ""


def test_the_json_names_the_reason_and_until_only_when_known():
    assert Waiting(WaitReason.BFL_SLOTS).to_api() == {"reason": "bfl_slots"}
    assert Waiting(WaitReason.BFL_CAPACITY, NOW + 12.4).to_api() == {"reason": "bfl_capacity",
                                                                     "until": "2027-01-15T08:00:12Z"}


def test_a_recorded_wait_reads_back_and_an_unknown_word_reads_as_none():
    assert Waiting.recorded("key_daily_credits", NOW) == Waiting(WaitReason.KEY_DAILY_CREDITS, NOW)
    assert Waiting.recorded("budget_settling", None) == Waiting(WaitReason.BUDGET_SETTLING)
    assert Waiting.recorded(None, None) is None
    assert Waiting.recorded("a_later_release_word", NOW) is None  # a rollback reads it as no reason, never fails


def test_all_slots_taken_is_bfl_slots():
    assert in_line(_line(pool_held=24), NOW) == Waiting(WaitReason.BFL_SLOTS)  # the pool's limit is BFL_MAX_ACTIVE


def test_a_models_own_limit_reached_is_model_limit():
    assert in_line(_line(pool_held=6, pool_limit=6), NOW) == Waiting(WaitReason.MODEL_LIMIT)
    # Its own limit at least: still its model's limit that holds it (a free slot elsewhere would not help it).
    assert in_line(_line(pool_held=7, pool_limit=6), NOW) == Waiting(WaitReason.MODEL_LIMIT)


def test_a_pool_whose_limit_is_the_accounts_waits_for_bfl_slots():
    # The default pool, or a model's limit at or above BFL_MAX_ACTIVE: the account's limit is what holds it.
    assert in_line(_line(pool_held=24, pool_limit=24), NOW) == Waiting(WaitReason.BFL_SLOTS)


def test_a_key_at_its_max_active_is_key_max_active_whatever_else_holds():
    full = _line(owner_held=2, owner_cap=2, pool_held=6, pool_limit=6, paused_until=NOW + 30)
    assert in_line(full, NOW) == Waiting(WaitReason.KEY_MAX_ACTIVE)
    assert in_line(_line(owner_held=1, owner_cap=2), NOW) == Waiting(WaitReason.BFL_SLOTS)


def test_a_paused_pool_is_bfl_capacity_until_the_pause_ends():
    paused = _line(paused_until=NOW + 7.5, pool_held=6, pool_limit=6)
    assert in_line(paused, NOW) == Waiting(WaitReason.BFL_CAPACITY, NOW + 7.5)
    # A pause already over says nothing: the pool's limit does.
    assert in_line(_line(paused_until=NOW - 1, pool_held=6, pool_limit=6), NOW) == Waiting(WaitReason.MODEL_LIMIT)


def test_room_everywhere_is_a_slot_about_to_be_handed_out():
    assert in_line(_line(), NOW) == Waiting(WaitReason.BFL_SLOTS)


@pytest.mark.parametrize("status", [st.SUBMITTED, st.READY, st.STORED, st.FAILED, st.MODERATED, st.EXPIRED])
def test_only_a_queued_job_waits(status):
    recorded = Waiting(WaitReason.DAILY_CREDITS, NOW + 60)
    assert waiting(status, Place.ASIDE, None, recorded, NOW) is None
    assert waiting(status, Place.LINE, _line(), None, NOW) is None


def test_a_queued_job_holding_a_slot_is_being_sent_and_waits_for_nothing():
    assert waiting(st.QUEUED, Place.SLOT, _line(), Waiting(WaitReason.BFL_CAPACITY, NOW + 5), NOW) is None


def test_in_line_the_slots_say_why_and_a_stale_recorded_wait_is_not_read():
    recorded = Waiting(WaitReason.KEY_DAILY_CREDITS, NOW + 3600)  # from before it went back in line
    assert waiting(st.QUEUED, Place.LINE, _line(), recorded, NOW) == Waiting(WaitReason.BFL_SLOTS)


def test_out_of_line_the_recorded_wait_says_why():
    recorded = Waiting(WaitReason.KEY_DAILY_CREDITS, NOW + 3600)
    assert waiting(st.QUEUED, Place.ASIDE, None, recorded, NOW) == recorded
    assert waiting(st.QUEUED, Place.ASIDE, None, None, NOW) is None
