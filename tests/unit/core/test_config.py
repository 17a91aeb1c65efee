"""Configuration (fluxhook/core/config.py): defaults, validation with one line per bad variable, no secrets in
reprs, previous values of rotated keys. Pure tests. The two Procfile commands stopping by themselves on a bad
environment: tests/e2e/processes/test_procfile_commands.py.
"""

from __future__ import annotations

import re

import pytest

from conftest import SECRET_KEY
from fluxhook.core.config import Config
from fluxhook.core.errors import ConfigError

MINIMAL = {
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "BFL_API_KEY": "bfl-api-key-for-tests",
    "SECRET_KEY": "0123456789abcdef0123456789abcdef",  # exactly 32 characters: the shortest that starts
    "API_TOKENS": "token-aaaaaaaa",
}

DOCUMENTED_VARIABLES = (
    "REDIS_URL", "BFL_API_KEY", "BFL_API_BASE", "BFL_WEBHOOK_SECRET", "WEBHOOK_REQUIRE_SECRET",
    "PUBLIC_BASE_URL", "SECRET_KEY", "API_TOKENS", "STORAGE_URL", "RESULT_HOST_ALLOWLIST",
    "API_HOST_ALLOWLIST", "CALLBACK_GRACE_SECONDS", "BFL_MAX_ACTIVE", "MAX_IMAGE_BYTES",
    "JOB_RETENTION_DAYS", "IMAGE_URL_TTL_SECONDS", "PORT",
)


def env(**changes: str | None) -> dict[str, str]:
    """The minimal valid environment with ``changes`` (None removes a variable)."""
    result = dict(MINIMAL)
    for name, value in changes.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def problems_of(environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        Config.from_env(environ)
    problems = info.value.problems
    assert problems, "a ConfigError must list its problems"
    assert all(isinstance(p, str) and p.strip() and "\n" not in p for p in problems)
    return problems


def names(problems: list[str]) -> list[str]:
    """The variable each problem line starts with."""
    found = []
    for line in problems:
        match = re.match(r"^([A-Z][A-Z0-9_]*)\b", line)
        assert match, f"problem line does not start with a variable name: {line!r}"
        found.append(match.group(1))
    return found


# --------------------------------------------------------------------------------------------
# defaults
# --------------------------------------------------------------------------------------------

def test_minimal_env_gives_spec_defaults():
    config = Config.from_env(env())
    assert config.redis_url == MINIMAL["REDIS_URL"]
    assert config.bfl_api_key == MINIMAL["BFL_API_KEY"]
    assert config.secret_key == MINIMAL["SECRET_KEY"]
    assert config.api_tokens == ("token-aaaaaaaa",)
    assert config.bfl_api_base == "https://api.bfl.ai"
    assert config.public_base_url == "http://localhost:8000"
    assert config.bfl_webhook_secret is None
    assert config.webhook_require_secret is False
    assert config.storage_url == "file://./var/images"
    assert config.callback_grace_seconds == 45
    assert config.bfl_max_active == 24
    assert config.bfl_model_limits == (("flux-kontext-max", 6), ("flux-3-video", 5))
    assert config.max_image_bytes == 52_428_800
    assert config.job_retention_days == 30
    assert config.image_url_ttl_seconds == 3600
    assert config.image_url_window_seconds == 3600


def test_default_allowlists():
    config = Config.from_env(env())
    result_hosts = {str(p) for p in config.result_host_allowlist}
    api_hosts = {str(p) for p in config.api_host_allowlist}
    assert {"delivery.*.bfl.ai", "delivery-*.bfl.ai", "bfldeliveryprod.blob.core.windows.net"} <= result_hosts
    # every host of BFL's domain one or two labels deep (its regional gateways hand out polling URLs), no other
    assert api_hosts == {"*.bfl.ai", "*.*.bfl.ai"}
    # the defaults name hosts, never an exact host:port that would allow http / private addresses
    assert not any(p.exact for p in config.result_host_allowlist + config.api_host_allowlist)
    # the API key host is not a place images come from, and vice versa
    assert "api.bfl.ai" not in result_hosts
    assert not any("delivery" in h for h in api_hosts)


@pytest.mark.parametrize("port", ["9123", "80", "65535"])
def test_public_base_url_defaults_to_localhost_port(port):
    assert Config.from_env(env(PORT=port)).public_base_url == f"http://localhost:{port}"


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_optional_variables_mean_default(blank):
    config = Config.from_env(env(BFL_API_BASE=blank, CALLBACK_GRACE_SECONDS=blank, STORAGE_URL=blank,
                                 RESULT_HOST_ALLOWLIST=blank, WEBHOOK_REQUIRE_SECRET=blank,
                                 BFL_WEBHOOK_SECRET=blank))
    assert config.bfl_api_base == "https://api.bfl.ai"
    assert config.callback_grace_seconds == 45
    assert config.storage_url == "file://./var/images"
    assert "delivery.*.bfl.ai" in {str(p) for p in config.result_host_allowlist}
    assert config.webhook_require_secret is False
    assert config.bfl_webhook_secret is None


def test_every_setting_can_be_overridden():
    config = Config.from_env(env(
        BFL_API_BASE="https://api.eu.bfl.ai/",
        BFL_WEBHOOK_SECRET="static-webhook-secret",
        WEBHOOK_REQUIRE_SECRET="1",
        PUBLIC_BASE_URL="https://hooks.example.com/",
        API_TOKENS="token-aaaaaaaa, token-bbbbbbbb,,",
        STORAGE_URL="file:///srv/fluxhook/images",
        RESULT_HOST_ALLOWLIST="127.0.0.1:8900, *.example.com",
        API_HOST_ALLOWLIST="[::1]:8080",
        CALLBACK_GRACE_SECONDS="0",
        BFL_MAX_ACTIVE="3",
        MAX_IMAGE_BYTES="200000",
        JOB_RETENTION_DAYS="7",
        IMAGE_URL_TTL_SECONDS="60",
    ))
    assert config.bfl_api_base == "https://api.eu.bfl.ai"
    assert config.bfl_webhook_secret == "static-webhook-secret"
    assert config.webhook_require_secret is True
    assert config.public_base_url == "https://hooks.example.com"
    assert config.api_tokens == ("token-aaaaaaaa", "token-bbbbbbbb")
    assert config.storage_url == "file:///srv/fluxhook/images"
    assert [str(p) for p in config.result_host_allowlist] == ["127.0.0.1:8900", "*.example.com"]
    assert [(p.host, p.port) for p in config.api_host_allowlist] == [("::1", 8080)]
    assert config.callback_grace_seconds == 0
    assert config.bfl_max_active == 3
    assert config.max_image_bytes == 200_000
    assert config.job_retention_days == 7
    assert config.image_url_ttl_seconds == 60


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("0", False)])
def test_webhook_require_secret_values(value, expected):
    assert Config.from_env(env(WEBHOOK_REQUIRE_SECRET=value)).webhook_require_secret is expected


@pytest.mark.parametrize("url", ["redis://localhost:6379/0", "rediss://:pw@redis.example.com:6380/1"])
def test_redis_url_schemes(url):
    assert Config.from_env(env(REDIS_URL=url)).redis_url == url


def test_from_env_without_argument_reads_os_environ(monkeypatch):
    for name in DOCUMENTED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in MINIMAL.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CALLBACK_GRACE_SECONDS", "12")
    config = Config.from_env()
    assert config.callback_grace_seconds == 12
    assert config.secret_key == MINIMAL["SECRET_KEY"]


# --------------------------------------------------------------------------------------------
# one line per bad variable
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("missing", ["REDIS_URL", "SECRET_KEY", "API_TOKENS"])
@pytest.mark.parametrize("how", ["unset", "empty", "blank"])
def test_each_missing_required_variable_is_one_line(missing, how):
    value = {"unset": None, "empty": "", "blank": "   "}[how]
    problems = problems_of(env(**{missing: value}))
    assert names(problems) == [missing]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REDIS_URL", "http://localhost:6379"),
        ("REDIS_URL", "localhost:6379"),
        ("REDIS_URL", "not a url"),
        ("BFL_API_BASE", "ftp://api.bfl.ai"),
        ("BFL_API_BASE", "api.bfl.ai"),
        ("BFL_API_BASE", "https://"),
        ("PUBLIC_BASE_URL", "ftp://hooks.example.com"),
        ("PUBLIC_BASE_URL", "hooks.example.com"),
        ("PUBLIC_BASE_URL", "https://"),
        ("API_TOKENS", ","),
        ("API_TOKENS", "token with spaces"),
        ("API_TOKENS", "token-aaaaaaaa,t\u00e9l\u00e9"),
        ("WEBHOOK_REQUIRE_SECRET", "maybe"),
        ("WEBHOOK_REQUIRE_SECRET", "2"),
        ("STORAGE_URL", "s3://Bad_Bucket/prefix"),
        ("STORAGE_URL", "http://example.com/images"),
        ("STORAGE_URL", "/var/images"),
        ("RESULT_HOST_ALLOWLIST", "*"),
        ("RESULT_HOST_ALLOWLIST", "*.ai"),
        ("RESULT_HOST_ALLOWLIST", "bfl.*"),
        ("RESULT_HOST_ALLOWLIST", "host:0"),
        ("RESULT_HOST_ALLOWLIST", "*.x.com:443"),
        ("RESULT_HOST_ALLOWLIST", "delivery.*.bfl.ai,*.ai"),
        ("RESULT_HOST_ALLOWLIST", "*,*.ai"),
        ("RESULT_HOST_ALLOWLIST", ","),
        ("API_HOST_ALLOWLIST", "*.com"),
        ("API_HOST_ALLOWLIST", "a b"),
        ("API_HOST_ALLOWLIST", "[::1]"),
        ("CALLBACK_GRACE_SECONDS", "abc"),
        ("CALLBACK_GRACE_SECONDS", "-1"),
        ("CALLBACK_GRACE_SECONDS", "1.5"),
        ("CALLBACK_GRACE_SECONDS", "3601"),
        ("BFL_MAX_ACTIVE", "0"),
        ("BFL_MAX_ACTIVE", "many"),
        ("MAX_IMAGE_BYTES", "50MB"),
        ("MAX_IMAGE_BYTES", "0"),
        ("MAX_IMAGE_BYTES", "-1"),
        ("JOB_RETENTION_DAYS", "0"),
        ("JOB_RETENTION_DAYS", "thirty"),
        ("IMAGE_URL_TTL_SECONDS", "0"),
        ("IMAGE_URL_TTL_SECONDS", "1h"),
        ("IMAGE_URL_WINDOW_SECONDS", "0"),
        ("IMAGE_URL_WINDOW_SECONDS", "1h"),
        ("IMAGE_URL_WINDOW_SECONDS", "604801"),
        ("PORT", "0"),
        ("PORT", "70000"),
        ("PORT", "http"),
        ("WORKER_PROCESSES", "0"),
        ("WORKER_PROCESSES", "33"),
        ("WORKER_PROCESSES", "two"),
        ("WAKE_GUARD_SECONDS", "0"),
        ("WAKE_GUARD_SECONDS", "301"),
        ("WAKE_GUARD_SECONDS", "10s"),
    ],
)
def test_each_bad_value_is_exactly_one_line_naming_the_variable(name, value):
    problems = problems_of(env(**{name: value}))
    assert names(problems) == [name], problems


def test_allowlist_with_one_good_and_one_bad_entry_still_fails():
    problems = problems_of(env(API_HOST_ALLOWLIST="api.bfl.ai,*.ai"))
    assert names(problems) == ["API_HOST_ALLOWLIST"]
    assert "*.ai" in problems[0]


def test_several_problems_are_reported_at_once():
    problems = problems_of(env(
        REDIS_URL=None,
        SECRET_KEY=None,
        CALLBACK_GRACE_SECONDS="abc",
        STORAGE_URL="s3://Bad_Bucket/prefix",
        WEBHOOK_REQUIRE_SECRET="maybe",
        MAX_IMAGE_BYTES="-5",
    ))
    assert sorted(names(problems)) == sorted([
        "REDIS_URL", "SECRET_KEY", "CALLBACK_GRACE_SECONDS", "STORAGE_URL", "WEBHOOK_REQUIRE_SECRET",
        "MAX_IMAGE_BYTES",
    ])


def test_empty_environment_lists_every_required_variable():
    problems = problems_of({})
    assert sorted(names(problems)) == ["API_TOKENS", "REDIS_URL", "SECRET_KEY"]


def test_config_error_message_joins_the_problems():
    with pytest.raises(ConfigError) as info:
        Config.from_env(env(SECRET_KEY=None, CALLBACK_GRACE_SECONDS="abc"))
    assert "SECRET_KEY" in str(info.value)
    assert "CALLBACK_GRACE_SECONDS" in str(info.value)
    assert info.value.code == "config_error"


# --------------------------------------------------------------------------------------------
# no secret values in reprs or problem lines
# --------------------------------------------------------------------------------------------

SECRETS = {
    "SECRET_KEY": "super-secret-key-value-1234567890",
    "BFL_API_KEY": "bfl-key-xyz-987654",
    "API_TOKENS": "token-alpha-1234,token-beta-5678",
    "BFL_WEBHOOK_SECRET": "whsec-abcdef-42",
    "REDIS_URL": "redis://:redispass-777@localhost:6379/0",
}
SECRET_VALUES = ("super-secret-key-value-1234567890", "bfl-key-xyz-987654", "token-alpha-1234", "token-beta-5678",
                 "whsec-abcdef-42", "redispass-777")


def test_repr_contains_no_secret_value():
    config = Config.from_env(SECRETS)
    assert config.secret_key == SECRETS["SECRET_KEY"]  # the values were read...
    for text in (repr(config), str(config), f"{config}", f"{config!r}"):
        for secret in SECRET_VALUES:
            assert secret not in text, f"{secret!r} leaks through {text!r}"


def test_problem_lines_contain_no_secret_value():
    leaked = {
        "SECRET_KEY": "shh-secret9",                            # short: refused, never echoed
        "API_TOKENS": "tok-ok-12345678,tok bad 9",              # one bad token
        "REDIS_URL": "http://:redis-pw-31337@localhost:6379",   # wrong scheme
        "BFL_API_KEY": "bfl-key-xyz-987654",
        "BFL_WEBHOOK_SECRET": "whsec-abcdef-42",
        "CALLBACK_GRACE_SECONDS": "abc",
    }
    with pytest.raises(ConfigError) as info:
        Config.from_env(leaked)
    text = "\n".join(info.value.problems) + str(info.value)
    for secret in ("shh-secret9", "tok-ok-12345678", "tok bad 9", "redis-pw-31337", "bfl-key-xyz-987654",
                   "whsec-abcdef-42"):
        assert secret not in text
    assert sorted(names(info.value.problems)) == ["API_TOKENS", "CALLBACK_GRACE_SECONDS", "REDIS_URL", "SECRET_KEY"]
    warned = "\n".join(Config.from_env(env(API_TOKENS="tok-ok-12345678,tok1")).warnings())
    assert "API_TOKENS" in warned and "tok1" not in warned


# --------------------------------------------------------------------------------------------
# the Procfile commands stop by themselves on a bad environment
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["file://var/images", "file://host/x", "ftp://x/y", "file:///x?y=1"])
def test_storage_urls_that_would_point_elsewhere_are_refused(value):
    with pytest.raises(ConfigError) as refused:
        Config.from_env({**MINIMAL, "STORAGE_URL": value})
    assert [p.split(":")[0] for p in refused.value.problems] == ["STORAGE_URL"]


@pytest.mark.parametrize("name", ["PUBLIC_BASE_URL", "BFL_API_BASE"])
def test_base_urls_with_a_query_are_refused(name):
    with pytest.raises(ConfigError) as refused:
        Config.from_env({**MINIMAL, name: "https://example.com/?a=1"})
    assert [p.split(":")[0] for p in refused.value.problems] == [name]


def test_a_localhost_public_url_with_bfl_itself_is_warned_about():
    base = {"REDIS_URL": "redis://x", "BFL_API_KEY": "k", "SECRET_KEY": "s" * 32, "API_TOKENS": "token-123456"}
    assert Config.from_env(base).warnings() and "PUBLIC_BASE_URL" in Config.from_env(base).warnings()[0]
    assert Config.from_env({**base, "PUBLIC_BASE_URL": "https://images.example.com"}).warnings() == []
    # With a simulator or another stand-in as BFL, localhost is right.
    assert Config.from_env({**base, "BFL_API_BASE": "http://127.0.0.1:8900"}).warnings() == []


EU_AT = {"BFL_ACCOUNTS": "eu,us", "BFL_EU_API_KEY": "eu-key", "BFL_US_API_KEY": "us-key"}


@pytest.mark.parametrize(("changes", "warned"), [
    # Every account at the simulator (make run's RUN_ACCOUNTS=2): its callbacks arrive, whatever BFL_API_BASE says.
    ({**EU_AT, "BFL_EU_API_BASE": "http://127.0.0.1:8901", "BFL_US_API_BASE": "http://127.0.0.1:8902"}, None),
    ({**EU_AT, "BFL_EU_API_BASE": "https://api.eu.bfl.ai", "BFL_US_API_BASE": "http://127.0.0.1:8902"},
     "PUBLIC_BASE_URL is http://localhost:8000: BFL cannot call back there, so every job through eu waits for the "
     "fallback poll (set it to this service's public https address)"),
    ({"BFL_API_KEY": "k", "PUBLIC_BASE_URL": "http://192.168.1.20:8000"}, "PUBLIC_BASE_URL is http://192.168.1.20:8000"),
    ({"BFL_API_KEY": "k", "PUBLIC_BASE_URL": "http://[::1]:8000"}, "BFL cannot call back there"),
    ({"BFL_API_KEY": "k", "PUBLIC_BASE_URL": "http://fluxhook.local:8000"}, "BFL cannot call back there"),
    ({"BFL_API_KEY": "k", "PUBLIC_BASE_URL": "https://203.0.113.9"}, "BFL cannot call back there"),  # documentation
    ({"BFL_API_KEY": "k", "PUBLIC_BASE_URL": "https://hooks.example.com"}, None),
    ({"BFL_API_KEY": "k", "PUBLIC_BASE_URL": "https://8.8.8.8"}, None),
    # No key: BFL is never called (BFL_API_KEY's own warning says so), nor calls back.
    ({"BFL_API_KEY": None}, None),
])
def test_bfl_cannot_call_back_is_judged_by_every_accounts_endpoint(changes, warned):
    said = [w for w in Config.from_env(env(**changes)).warnings() if "PUBLIC_BASE_URL" in w]
    assert said == [] if warned is None else len(said) == 1 and warned in said[0], said


# BFL_API_KEY is not required outside the dev run, nor a bearer token's length: such
# settings start, and say at start what is weak about them.
@pytest.mark.parametrize(("changes", "warned"), [
    ({"BFL_API_KEY": None}, "BFL_API_KEY is not set"),
    ({"API_TOKENS": "token-aaaaaaaa,tiny"}, "API_TOKENS entry is shorter than 8"),
])
def test_weak_but_valid_settings_start_with_a_warning(changes, warned):
    config = Config.from_env(env(**changes))
    assert [w for w in config.warnings() if warned in w], config.warnings()


def test_the_minimal_settings_start_without_a_warning_and_accept_small_limits():
    assert Config.from_env(env(PUBLIC_BASE_URL="https://hooks.example.com")).warnings() == []
    small = Config.from_env(env(MAX_IMAGE_BYTES="1", IMAGE_URL_TTL_SECONDS="1", IMAGE_URL_WINDOW_SECONDS="1"))
    assert (small.max_image_bytes, small.image_url_ttl_seconds, small.image_url_window_seconds) == (1, 1, 1)


OLD_KEYS = ("old-key-0123456789abcdef0123456789", "older-key-0123456789abcdef012345678")


def test_previous_values_are_read():
    base = {"REDIS_URL": "redis://x", "BFL_API_KEY": "k", "SECRET_KEY": SECRET_KEY, "API_TOKENS": "token-123456"}
    config = Config.from_env({**base, "SECRET_KEY_PREVIOUS": f"{OLD_KEYS[0]}, {OLD_KEYS[1]}",
                              "BFL_WEBHOOK_SECRET_PREVIOUS": "tiny"})
    assert config.secret_keys == (*OLD_KEYS, SECRET_KEY) and config.webhook_secrets == ("tiny",)


# A weak signing key lets anyone who saw one signed link forge the others offline: it refuses to start, saying
# how to make a good one and never echoing the value.
@pytest.mark.parametrize(("name", "value", "said"), [
    ("SECRET_KEY", "a", "shorter than 32 characters"),
    ("SECRET_KEY", "x" * 31, "shorter than 32 characters"),
    ("SECRET_KEY", "changeme", "well-known placeholder"),
    ("SECRET_KEY", "Change-Me", "well-known placeholder"),
    ("SECRET_KEY", "Super_Secret", "well-known placeholder"),
    ("SECRET_KEY_PREVIOUS", f"{OLD_KEYS[0]},short", "shorter than 32 characters or a well-known placeholder"),
])
def test_a_weak_signing_key_refuses_to_start(name, value, said):
    with pytest.raises(ConfigError) as info:
        Config.from_env(env(**{name: value}))
    [line] = info.value.problems
    assert line.startswith(f"{name}: ") and said in line, line
    assert "openssl rand -hex 32" in line or name == "SECRET_KEY_PREVIOUS"
    assert value not in line.split(": ", 1)[1] or len(value) == 1


def test_a_key_of_32_characters_starts_without_a_warning():
    config = Config.from_env(env(SECRET_KEY="k" * 32, SECRET_KEY_PREVIOUS="o" * 32))
    assert not [w for w in config.warnings() if "SECRET_KEY" in w]


def test_max_streams_per_caller_defaults_to_20_and_a_bad_value_names_it():
    assert Config.from_env(env()).max_streams_per_caller == 20
    assert Config.from_env(env(MAX_STREAMS_PER_CALLER="3")).max_streams_per_caller == 3
    for bad in ("0", "-1", "many", "100001"):
        assert any(p.startswith("MAX_STREAMS_PER_CALLER") for p in problems_of(env(MAX_STREAMS_PER_CALLER=bad)))


def test_reads_per_minute_defaults_to_600_and_a_bad_value_names_it():
    assert Config.from_env(env()).reads_per_minute == 600
    assert Config.from_env(env(READS_PER_MINUTE="30")).reads_per_minute == 30
    for bad in ("0", "-1", "many", "1000001"):
        assert any(p.startswith("READS_PER_MINUTE") for p in problems_of(env(READS_PER_MINUTE=bad)))
