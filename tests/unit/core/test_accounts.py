"""The accounts' pure rules: which accounts a job may use (its route, read back as the slot scripts read it, on a
real Redis), cooldown lengths, their settings; and their pools: BFL_MODEL_LIMITS (with fluxhook/core/config.py)
parsed, a pool per named model, on a real Redis, where a model waiting for its own limit never holds up the others."""

from __future__ import annotations

import time

import pytest

from fluxhook.core import job as st
from fluxhook.core.accounts import (
    ANY_ROUTE,
    COOL_CAP,
    DEFAULT_POOL,
    KONTEXT_MAX_POOL,
    Account,
    cooldown_seconds,
    env_prefix,
    is_finetuned,
    parse_names,
    pool_for,
    pool_limit,
    pooled_limits,
    pools,
    route_for,
)
from fluxhook.core.config import Config, parse_model_limits
from fluxhook.core.errors import ConfigError, Forbidden, InvalidRequest
from fluxhook.core.job import Job, new_job_id
from fluxhook.store.jobs import JobStore
from fluxhook.store.slots import Slots
from slot_helpers import in_flight

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


MINIMAL = {"REDIS_URL": "redis://localhost:6379/0", "SECRET_KEY": "s" * 32, "API_TOKENS": "token-aaaaaaaa"}
FAIL = {"code": "bfl_error", "message": "x"}


@pytest.mark.parametrize("text, limits", [
    ("flux-kontext-max=6,flux-3-video=5", (("flux-kontext-max", 6), ("flux-3-video", 5))),
    (" flux-3-video = 2 , ", (("flux-3-video", 2),)),
    ("none", ()),
    ("flux-2-pro=1,flux.x-9=10000", (("flux-2-pro", 1), ("flux.x-9", 10_000))),
])
def test_model_limits_parse(text, limits):
    assert parse_model_limits(text) == limits


@pytest.mark.parametrize("text", [
    "flux-3-video", "flux-3-video=0", "flux-3-video=-1", "flux-3-video=x", "Flux=2", "default=3",
    "flux-3-video=2,flux-3-video=3", "=4", "a b=1", "flux-3-video=10001",
])
def test_bad_model_limits_are_refused(text):
    with pytest.raises(ValueError):
        parse_model_limits(text)


def test_the_setting_and_its_deprecated_alias():
    assert Config.from_env(MINIMAL).bfl_model_limits == (("flux-kontext-max", 6), ("flux-3-video", 5))
    alias = Config.from_env({**MINIMAL, "BFL_MAX_ACTIVE_KONTEXT_MAX": "2"})
    assert alias.bfl_model_limits == (("flux-kontext-max", 2), ("flux-3-video", 5))
    both = Config.from_env({**MINIMAL, "BFL_MAX_ACTIVE_KONTEXT_MAX": "2", "BFL_MODEL_LIMITS": "flux-3-video=3"})
    assert both.bfl_model_limits == (("flux-3-video", 3),)
    with pytest.raises(ConfigError) as error:
        Config.from_env({**MINIMAL, "BFL_MODEL_LIMITS": "flux-3-video=lots"})
    assert error.value.problems[0].startswith("BFL_MODEL_LIMITS: ")


def test_pools_and_their_limits():
    config = Config.from_env({**MINIMAL, "BFL_MAX_ACTIVE": "4", "BFL_MODEL_LIMITS": "flux-3-video=5,flux-2-max=2"})
    assert pools(config.bfl_model_limits) == (DEFAULT_POOL, "flux-3-video", "flux-2-max")
    assert pool_for("flux-3-video", config.bfl_model_limits) == "flux-3-video"
    assert pool_for("flux-kontext-max", config.bfl_model_limits) == DEFAULT_POOL
    assert pool_for(None, config.bfl_model_limits) == DEFAULT_POOL
    # A model's limit is within BFL_MAX_ACTIVE, never above it.
    assert [pool_limit(config, p) for p in pools(config.bfl_model_limits)] == [4, 4, 2]


def _config(**env) -> Config:
    return Config.from_env({**MINIMAL, **env})


def _queued(store: JobStore, slots: Slots, model: str) -> Job:
    created = time.time()
    job = Job(id=new_job_id(created), status=st.QUEUED, model=model, input={"prompt": "x"},
              pool=pool_for(model, slots.config.bfl_model_limits), created_at=created, updated_at=created)
    store.create(job)
    return job


def test_a_video_waiting_for_its_own_limit_never_holds_up_images(connection):
    config = _config(BFL_MAX_ACTIVE="6", BFL_MODEL_LIMITS="flux-kontext-max=2,flux-3-video=2")
    slots = Slots(connection, config)
    store = JobStore(connection, pools=pools(config.bfl_model_limits))
    videos = [_queued(store, slots, "flux-3-video") for _ in range(4)]
    assert [bool(slots.acquire(v)) for v in videos] == [True, True, False, False]
    # Two videos wait for their own pool: images, kontext-max included, still go straight out.
    images = [_queued(store, slots, m) for m in ("flux-2-pro", "flux-kontext-max", "flux-2-pro", "flux-kontext-max")]
    assert [bool(slots.acquire(j)) for j in images] == [True, True, True, True]
    assert in_flight(slots, "flux-3-video") == 2 and slots.waiting("flux-3-video") == 2
    # All of BFL_MAX_ACTIVE is taken. A freed image slot cannot go to the videos waiting before it (their
    # pool is still full): the image behind them gets it.
    late = _queued(store, slots, "flux-2-pro")
    assert slots.acquire(late) is None
    store.transition(images[0].id, st.FAILED, error=FAIL)
    assert slots.dispatch().jobs == [late.id]
    # A video ending frees its pool: the earliest waiting video goes next, first come, first served.
    store.transition(videos[0].id, st.FAILED, error=FAIL)
    assert slots.dispatch().jobs == [videos[2].id]


def test_a_job_whose_pool_is_no_longer_configured_counts_against_the_default(connection):
    old = _config(BFL_MODEL_LIMITS="flux-3-video=1")
    slots = Slots(connection, _config(BFL_MODEL_LIMITS="none", BFL_MAX_ACTIVE="1"))
    store = JobStore(connection, pools=pools(old.bfl_model_limits))
    job = _queued(store, Slots(connection, old), "flux-3-video")
    assert job.pool == "flux-3-video"
    assert slots.pool_of(job) == DEFAULT_POOL
    assert bool(slots.acquire(job)) is True and in_flight(slots, DEFAULT_POOL) == 1


def test_model_pools():
    assert pool_for("flux-kontext-max") == KONTEXT_MAX_POOL
    assert pool_for("flux-kontext-pro") == DEFAULT_POOL
    assert pool_for(None) == DEFAULT_POOL
