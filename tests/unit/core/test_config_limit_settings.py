"""The settings of the limits no caller can bend: MAX_SPOOL_BYTES and MIN_BODY_RATE for bodies still
arriving, METRICS_TOKEN for /metrics. Read once into the typed Config, with one line per bad value; the app hands
the first two to the web worker (receiver/buffering_worker.py). Pure: no processes."""

from __future__ import annotations

import pytest

from fluxhook.core.config import MIN_SPOOL_BYTES, Config
from fluxhook.core.errors import ConfigError
from fluxhook.core.logs import config_secrets
from receiver.request_assembly import BodyLimits

MINIMAL = {
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "BFL_API_KEY": "bfl-api-key-for-tests",
    "SECRET_KEY": "0123456789abcdef0123456789abcdef",
    "API_TOKENS": "token-aaaaaaaa",
}


def test_the_defaults_are_the_specs():
    config = Config.from_env(MINIMAL)

    assert config.max_spool_bytes == 1024**3
    assert config.min_body_rate == 64 * 1024
    assert config.metrics_token is None
    assert BodyLimits() == BodyLimits(config.max_spool_bytes, config.min_body_rate)


def test_each_can_be_set():
    config = Config.from_env(dict(MINIMAL, MAX_SPOOL_BYTES=str(MIN_SPOOL_BYTES), MIN_BODY_RATE="1",
                                  METRICS_TOKEN=" prometheus-scrape-token "))

    assert (config.max_spool_bytes, config.min_body_rate) == (MIN_SPOOL_BYTES, 1)
    assert config.metrics_token == "prometheus-scrape-token"
    assert "prometheus-scrape-token" in config_secrets(config)  # redacted from every log line


@pytest.mark.parametrize("name, value", [
    ("MAX_SPOOL_BYTES", "1GiB"), ("MAX_SPOOL_BYTES", str(MIN_SPOOL_BYTES - 1)), ("MAX_SPOOL_BYTES", "-1"),
    ("MIN_BODY_RATE", "0"), ("MIN_BODY_RATE", "64k"), ("MIN_BODY_RATE", "1.5"),
    ("METRICS_TOKEN", "two words"), ("METRICS_TOKEN", "t\u00e9l\u00e9m\u00e9trie"),
])
def test_a_bad_value_is_one_line_naming_the_variable(name, value):
    with pytest.raises(ConfigError) as refused:
        Config.from_env(dict(MINIMAL, **{name: value}))

    assert len(refused.value.problems) == 1 and refused.value.problems[0].startswith(f"{name}: ")
    assert name != "METRICS_TOKEN" or value not in refused.value.problems[0]


def test_a_short_metrics_token_starts_with_a_warning():
    warnings = Config.from_env(dict(MINIMAL, METRICS_TOKEN="short")).warnings()

    assert [w for w in warnings if w.startswith("METRICS_TOKEN is shorter than")], warnings


def test_the_app_hands_the_body_limits_to_the_web_worker():
    from receiver import create_app

    config = Config.from_env(dict(MINIMAL, MAX_SPOOL_BYTES=str(8 * 1024**2), MIN_BODY_RATE="1000"))
    app = create_app(config)

    assert app.body_limits == BodyLimits(8 * 1024**2, 1000)


def test_items_per_minute_and_per_day_default_to_20000_and_50000_and_a_bad_value_is_one_line_naming_it():
    config = Config.from_env(MINIMAL)
    assert (config.reads_per_minute, config.items_per_minute, config.items_per_day) == (600, 20_000, 50_000)
    config = Config.from_env(dict(MINIMAL, ITEMS_PER_MINUTE="50", ITEMS_PER_DAY="1000"))
    assert (config.items_per_minute, config.items_per_day) == (50, 1000)
    for name, bad in [("ITEMS_PER_MINUTE", "0"), ("ITEMS_PER_MINUTE", "10000001"), ("ITEMS_PER_MINUTE", "2e4"),
                      ("ITEMS_PER_DAY", "-1"), ("ITEMS_PER_DAY", "1000000001"), ("ITEMS_PER_DAY", "lots")]:
        with pytest.raises(ConfigError) as refused:
            Config.from_env(dict(MINIMAL, **{name: bad}))
        assert len(refused.value.problems) == 1 and refused.value.problems[0].startswith(f"{name}: ")
    with pytest.raises(ConfigError) as both:
        Config.from_env(dict(MINIMAL, ITEMS_PER_MINUTE="0", ITEMS_PER_DAY="0", READS_PER_MINUTE="0"))
    assert [p.split(":")[0] for p in both.value.problems] == ["READS_PER_MINUTE", "ITEMS_PER_MINUTE", "ITEMS_PER_DAY"]
