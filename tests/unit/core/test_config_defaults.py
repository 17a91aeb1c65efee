"""fluxhook/core/config.py: each setting's default is written once, on its ``Config`` field (``field_default``), and
an environment that leaves the variable unset gets exactly that; the web server's settings read the same ones."""

from __future__ import annotations

import dataclasses
import importlib

import pytest

from fluxhook.core.config import DEFAULT_PORT, Config, field_default
from receiver import bulkheads, variant_makers

MINIMAL = {"REDIS_URL": "redis://127.0.0.1:6379/0", "BFL_API_KEY": "k", "SECRET_KEY": "0123456789abcdef0123456789abcdef",
           "API_TOKENS": "token-aaaaaaaa"}
# Fields whose unset variable means something else than the field's default, on purpose: a Config built in code
# trusts no host, while the environment's default trusts BFL's own (DEFAULT_RESULT_HOSTS, DEFAULT_API_HOSTS).
DIFFERENT_ON_PURPOSE = {"result_host_allowlist", "api_host_allowlist"}


def _defaulted() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(Config) if f.default is not dataclasses.MISSING]


@pytest.mark.parametrize("field", [f for f in _defaulted() if f.name not in DIFFERENT_ON_PURPOSE], ids=lambda f: f.name)
def test_an_unset_variable_gives_the_fields_default(field):
    assert getattr(Config.from_env(MINIMAL), field.name) == field.default == field_default(field.name)


def test_the_default_public_url_is_at_the_default_port():
    assert field_default("public_base_url") == f"http://localhost:{DEFAULT_PORT}"
    assert Config.from_env({**MINIMAL, "PORT": "9001"}).public_base_url == "http://localhost:9001"


def test_a_field_without_a_default_is_refused():
    with pytest.raises(KeyError):
        field_default("redis_url")
    with pytest.raises(KeyError):
        field_default("no_such_setting")


def test_the_web_server_listens_on_the_default_port_with_the_default_threads(monkeypatch):
    for name in ("PORT", "WEB_THREADS", "WEB_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    from receiver import gunicorn_conf
    gunicorn_conf = importlib.reload(gunicorn_conf)
    assert gunicorn_conf.bind == f"0.0.0.0:{DEFAULT_PORT}"
    # The permits, and a thread for each place of every room where a request waits holding no permit.
    assert gunicorn_conf.threads == (field_default("web_threads") + bulkheads.WAITING_ROOM + bulkheads.BFL_CALL_ROOM
                                     + bulkheads.BATCH_MAKING_ROOM + bulkheads.ANSWER_ROOM + bulkheads.TARPIT_ROOM
                                     + variant_makers.VARIANT_ROOM)
