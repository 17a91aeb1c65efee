"""The accounts' pure rules: which accounts a job may use (its route, read back as the slot scripts read it, on a
real Redis), cooldown lengths, their settings."""

from __future__ import annotations

import pytest

from fluxhook.core.accounts import (
    ANY_ROUTE,
    COOL_CAP,
    Account,
    cooldown_seconds,
    env_prefix,
    is_finetuned,
    parse_names,
    pooled_limits,
    route_for,
)
from fluxhook.core.config import Config
from fluxhook.core.errors import ConfigError, Forbidden, InvalidRequest

EU = Account("eu", "k1", "https://api.eu.bfl.ai", region="eu")
EU1 = Account("eu1", "k2", "https://api.eu1.bfl.ai", region="eu", model_limits=(("flux-3-video", 2),))
US = Account("us", "k3", "https://api.us.bfl.ai", region="us")
CLIENT = Account("client-a", "k4", "https://api.bfl.ai")
ALL = (EU, EU1, US, CLIENT)
BASE = {"REDIS_URL": "redis://localhost/0", "SECRET_KEY": "s" * 32, "API_TOKENS": "t" * 16}


def _allowed(connection, route: str) -> list[str]:
    """The accounts a route allows, as the slot scripts read it (``Slots.accounts_for``, ``lua/routes.lua``)."""
    from dataclasses import replace

    from fluxhook.store.slots import Slots
    from slot_helpers import _config

    return Slots(connection, replace(_config(), named_accounts=ALL)).accounts_for([route])[route]


def test_a_job_without_limits_may_use_any_account(connection):
    assert route_for(ALL) == ANY_ROUTE and _allowed(connection, ANY_ROUTE) == ["eu", "eu1", "us", "client-a"]


def test_a_region_key_keeps_its_jobs_in_the_region(connection):
    route = route_for(ALL, key_region="eu")
    assert route == "r:eu" and _allowed(connection, route) == ["eu", "eu1"]


def test_an_accounts_key_uses_only_its_accounts_and_a_job_may_narrow_them_to_one(connection):
    assert _allowed(connection, route_for(ALL, key_accounts=("client-a",))) == ["client-a"]
    assert _allowed(connection, route_for(ALL, key_accounts=("eu", "us"), account="us")) == ["us"]
    # Both: the accounts named that are in the region.
    assert _allowed(connection, route_for(ALL, key_accounts=("eu", "us"), key_region="eu")) == ["eu"]


def test_a_job_may_not_name_an_account_its_key_may_not_use():
    with pytest.raises(Forbidden) as refused:
        route_for(ALL, key_region="eu", account="us")
    assert refused.value.code == "account_not_allowed"
    with pytest.raises(InvalidRequest, match="no account 'mars'"):
        route_for(ALL, account="mars")


def test_a_key_whose_accounts_are_gone_is_told_what_to_change():
    with pytest.raises(InvalidRequest, match="'accounts' or 'region'"):
        route_for(ALL, key_region="apac")


def test_a_finetune_goes_to_one_endpoint_only(connection):
    assert is_finetuned("flux-pro-1.1-ultra-finetuned") and not is_finetuned("flux-2-pro")
    with pytest.raises(InvalidRequest, match="finetuned"):
        route_for(ALL, key_region="eu", finetuned=True)
    assert _allowed(connection, route_for(ALL, key_region="eu", account="eu1", finetuned=True)) == ["eu1"]
    assert _allowed(connection, route_for(ALL, key_accounts=("client-a",), finetuned=True)) == ["client-a"]


def test_cooldown_honours_retry_after_else_backs_off_to_a_cap():
    assert cooldown_seconds(7.0, 1) == 7.0 and cooldown_seconds(0.5, 9) == 0.5
    assert 1.0 <= cooldown_seconds(None, 1) <= 2.0
    assert COOL_CAP / 2 <= cooldown_seconds(None, 30) <= COOL_CAP


def test_pools_span_every_accounts_limits():
    assert dict(pooled_limits((EU, EU1))) == {"flux-3-video": 2}
    assert EU1.pool_limit("flux-3-video") == 2 and EU.pool_limit("flux-3-video") == 24


def test_names_and_their_settings_prefix():
    assert parse_names(" eu, US ,client-a") == ("eu", "us", "client-a")
    assert env_prefix("client-a") == "BFL_CLIENT_A_"
    for bad in ("", "eu,eu", "-x", "a_b"):
        with pytest.raises(ValueError):
            parse_names(bad)


def test_without_bfl_accounts_there_is_one_default_account_of_the_bfl_settings():
    config = Config.from_env({**BASE, "BFL_API_KEY": "key", "BFL_MAX_ACTIVE": "7"})
    (account,) = config.accounts
    assert (account.name, account.api_key, account.api_base, account.max_active) == ("default", "key",
                                                                                      "https://api.bfl.ai", 7)


def test_each_named_account_reads_its_own_settings_and_inherits_the_limits():
    config = Config.from_env({**BASE, "BFL_MAX_ACTIVE": "12", "BFL_ACCOUNTS": "eu,client-a",
                              "BFL_EU_API_KEY": "ke", "BFL_EU_API_BASE": "https://api.eu.bfl.ai/", "BFL_EU_REGION": "EU",
                              "BFL_EU_WEBHOOK_SECRET": "whs-eu", "BFL_EU_DAILY_CREDIT_LIMIT": "50",
                              "BFL_CLIENT_A_API_KEY": "kc", "BFL_CLIENT_A_API_BASE": "https://api.bfl.ai",
                              "BFL_CLIENT_A_MAX_ACTIVE": "3", "BFL_CLIENT_A_MODEL_LIMITS": "flux-3-video=1"})
    eu, client = config.accounts
    assert (eu.api_base, eu.region, eu.max_active, eu.webhook_secrets, eu.daily_credit_limit) == (
        "https://api.eu.bfl.ai", "eu", 12, ("whs-eu",), 50.0)
    assert (client.region, client.max_active, client.model_limits) == (None, 3, (("flux-3-video", 1),))
    assert "ke" not in repr(config) and "ke" not in repr(eu)


def test_every_problem_of_the_accounts_is_one_line():
    with pytest.raises(ConfigError) as bad:
        Config.from_env({**BASE, "BFL_ACCOUNTS": "eu,us", "BFL_EU_API_BASE": "ftp://x", "BFL_US_API_KEY": "k",
                         "BFL_US_API_BASE": "https://api.us.bfl.ai", "BFL_US_MAX_ACTIVE": "0"})
    assert bad.value.problems == [
        "BFL_EU_API_KEY: is required but not set",
        "BFL_EU_API_BASE: must be a URL with scheme http or https",
        "BFL_US_MAX_ACTIVE: must be between 1 and 10000, got 0",
    ]
