"""BFL_MODEL_LIMITS (fluxhook/core/pools.py, fluxhook/core/config.py): parsing, pools, and a pool per named model
on a real Redis, where a model waiting for its own limit never holds up the others."""

from __future__ import annotations

import time

import pytest

from fluxhook.core import transitions as st
from fluxhook.core.config import Config, parse_model_limits
from fluxhook.core.errors import ConfigError
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.pools import DEFAULT_POOL, KONTEXT_MAX_POOL, pool_for, pool_limit, pools
from fluxhook.store.jobs import JobStore
from fluxhook.store.slots import Slots
from slot_helpers import in_flight

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
