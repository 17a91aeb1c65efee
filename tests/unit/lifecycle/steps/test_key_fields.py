"""An app key's fields (fluxhook/lifecycle/steps/key_fields.py): a change request's body read into what it sets and
the limits it removes, a new key made with its secret, and a key shown with its secret only in the answer that
creates it. Each field's refusals, through the admin's create: tests/unit/lifecycle/test_key_admin.py."""

from __future__ import annotations

import pytest

from fluxhook.core.errors import InvalidRequest
from fluxhook.core.job import iso
from fluxhook.lifecycle.steps import callers, key_fields
from fluxhook.store.owners import DEFAULT_WEIGHT

NOW = 1_800_000_000.0


def test_a_change_sets_what_it_names_and_null_removes_a_limit_or_restores_the_default_weight():
    body = {"name": " shop ", "models": ["flux-2-pro", "flux-2-pro"], "daily_credits": 5, "max_active": None,
            "weight": None}

    values, unset = key_fields.parse(body, creating=False, now=NOW)

    assert values == {"name": "shop", "models": ("flux-2-pro",), "daily_credits": 5.0, "weight": DEFAULT_WEIGHT}
    assert unset == ("max_active",)
    assert key_fields.parse({}, creating=False, now=NOW) == ({}, ())  # a change need not rename
    with pytest.raises(InvalidRequest, match="a JSON object"):
        key_fields.parse(["shop"], creating=True, now=NOW)


def test_a_new_keys_secret_names_its_id_and_is_shown_only_when_given():
    key, secret = key_fields.new_key({"name": "shop"}, NOW)

    assert callers.key_id_in(secret) == key.id and key.prefix == secret[:8]
    assert key.secret_sha256 == callers.digest(secret) and secret not in key.secret_sha256
    assert (key.name, key.weight, key.created_at) == ("shop", DEFAULT_WEIGHT, NOW)
    shown = key_fields.present_key(key)
    assert "key" not in shown and secret not in shown.values()
    assert (shown["id"], shown["created_at"], shown["queued_by_reason"]) == (key.id, iso(NOW), {})
    assert key_fields.present_key(key, secret=secret)["key"] == secret


@pytest.mark.parametrize("name, high", [("reads_per_minute", 1_000_000), ("items_per_minute", 10_000_000),
                                        ("items_per_day", 1_000_000_000)])
def test_the_read_and_item_limits_are_whole_numbers_in_bounds_and_null_returns_them_to_the_service(name, high):
    assert key_fields.parse({name: high}, creating=False, now=NOW) == ({name: high}, ())
    assert key_fields.parse({name: None}, creating=False, now=NOW) == ({}, (name,))
    for bad in (0, -1, high + 1, 1.5, "60", True):
        with pytest.raises(InvalidRequest, match=f"^'{name}' must be a whole number from 1 to {high}, or null$"):
            key_fields.parse({name: bad}, creating=False, now=NOW)
    key, _ = key_fields.new_key({"name": "shop", name: 7}, NOW)
    shown = key_fields.present_key(key)
    assert shown[name] == 7
    assert {other: shown[other] for other in ("reads_per_minute", "items_per_minute", "items_per_day")
            if other != name} == dict.fromkeys({"reads_per_minute", "items_per_minute", "items_per_day"} - {name})
