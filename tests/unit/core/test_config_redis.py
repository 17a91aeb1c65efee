"""The Redis settings beyond REDIS_URL (fluxhook/core/config.py): Sentinel, and the replicas an
acknowledgement waits for. Each bad value is one problem line naming its variable."""

from __future__ import annotations

import pytest

from fluxhook.core.config import SENTINEL_MIN_REPLICAS, Config

from .test_config import env, names, problems_of


def test_by_default_one_address_and_no_wait_for_replicas():
    config = Config.from_env(env())
    assert config.redis_sentinels == () and config.redis_sentinel_master is None
    assert config.redis_min_replicas == 0 and config.redis_wait_ms == 500


def test_sentinels_and_their_master():
    config = Config.from_env(env(REDIS_SENTINELS=" 10.0.0.5:26379, sentinel-b:26380,[::1]:26381 ",
                                 REDIS_SENTINEL_MASTER="fluxhook"))
    assert config.redis_sentinels == (("10.0.0.5", 26379), ("sentinel-b", 26380), ("::1", 26381))
    assert config.redis_sentinel_master == "fluxhook"


SENTINEL = {"REDIS_SENTINELS": "10.0.0.5:26379", "REDIS_SENTINEL_MASTER": "fluxhook"}


def test_under_sentinel_an_acknowledgement_waits_for_one_replica_unless_told_otherwise():
    # docs/operating.md: a Sentinel deployment has a replica by design; without the wait a failover loses acknowledged writes.
    assert Config.from_env(env(**SENTINEL)).redis_min_replicas == SENTINEL_MIN_REPLICAS == 1
    assert Config.from_env(env(**SENTINEL, REDIS_MIN_REPLICAS="0")).redis_min_replicas == 0
    assert Config.from_env(env(**SENTINEL, REDIS_MIN_REPLICAS="2")).redis_min_replicas == 2
    assert Config.from_env(env(REDIS_MIN_REPLICAS="1")).redis_min_replicas == 1


@pytest.mark.parametrize("value", ["-1", "17", "one", "1.5"])
def test_a_bad_min_replicas_says_its_range_and_its_defaults(value):
    problems = problems_of(env(**SENTINEL, REDIS_MIN_REPLICAS=value))
    assert problems == [f"REDIS_MIN_REPLICAS: must be a whole number of replicas between 0 and 16, got {value!r} "
                        "(unset: 1 with REDIS_SENTINELS, else 0; 0 under Sentinel risks losing acknowledged writes in "
                        "a failover)"]


@pytest.mark.parametrize("changes, variable, words", [
    ({"REDIS_SENTINELS": "10.0.0.5:26379"}, "REDIS_SENTINEL_MASTER", "required with REDIS_SENTINELS"),
    ({"REDIS_SENTINEL_MASTER": "fluxhook"}, "REDIS_SENTINELS", "required with REDIS_SENTINEL_MASTER"),
    ({"REDIS_SENTINELS": "10.0.0.5", "REDIS_SENTINEL_MASTER": "m"}, "REDIS_SENTINELS", "is not host:port"),
    ({"REDIS_SENTINELS": "10.0.0.5:0", "REDIS_SENTINEL_MASTER": "m"}, "REDIS_SENTINELS", "is not host:port"),
    ({"REDIS_SENTINELS": "a:1", "REDIS_SENTINEL_MASTER": "my master"}, "REDIS_SENTINEL_MASTER", "without spaces"),
    ({"REDIS_MIN_REPLICAS": "-1"}, "REDIS_MIN_REPLICAS", "between 0 and 16"),
    ({"REDIS_WAIT_MS": "0"}, "REDIS_WAIT_MS", "between 1 and 5000"),
    ({"REDIS_WAIT_MS": "60000"}, "REDIS_WAIT_MS", "between 1 and 5000"),
])
def test_a_bad_redis_setting_is_one_line_naming_it(changes, variable, words):
    problems = problems_of(env(**changes))
    assert names(problems) == [variable]
    assert words in problems[0]
