"""``make run``'s banner (devtools/run.py): where BFL is, each account at its endpoint, and at start, beside it, a
warning when BFL cannot call back (a real key and endpoint with a localhost PUBLIC_BASE_URL). The run itself:
tests/e2e/dev/test_make_run.py."""

from __future__ import annotations

from devtools.run import bfl_lines
from devtools.stack import Stack
from fluxhook.core.config import Config

SETTINGS = {"REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": "x" * 32, "API_TOKENS": "token-123456", "PORT": "8000"}
CANNOT = ("  warning: PUBLIC_BASE_URL is http://localhost:8000: BFL cannot call back there, so every job{} waits for "
          "the fallback poll (set it to this service's public https address)")


def _lines(tmp_path, **env: str) -> list[str]:
    settings = {**SETTINGS, **env}
    return bfl_lines(Stack(env=settings, var_dir=tmp_path), Config.from_env(settings))


def test_a_real_bfl_key_with_a_localhost_public_base_url_is_said_at_start(tmp_path):
    assert _lines(tmp_path, BFL_API_KEY="bfl-key") == ["  BFL:    https://api.bfl.ai", CANNOT.format("")]
    assert _lines(tmp_path, BFL_API_KEY="bfl-key", PUBLIC_BASE_URL="https://hooks.example.com") == [
        "  BFL:    https://api.bfl.ai"]


def test_the_environments_accounts_each_at_its_endpoint(tmp_path):
    accounts = {"BFL_ACCOUNTS": "eu,local", "BFL_EU_API_KEY": "eu-key", "BFL_EU_API_BASE": "https://api.eu.bfl.ai",
                "BFL_LOCAL_API_KEY": "local-key", "BFL_LOCAL_API_BASE": "http://127.0.0.1:8901"}
    assert _lines(tmp_path, **accounts) == [
        "  BFL:    accounts eu at https://api.eu.bfl.ai, local at http://127.0.0.1:8901 (BFL_ACCOUNTS from the "
        "environment)", CANNOT.format(" through eu")]
    # Every account at a stand-in of BFL on this machine: its callbacks arrive, nothing to warn about.
    assert _lines(tmp_path, **{**accounts, "BFL_EU_API_BASE": "http://127.0.0.1:8902"})[1:] == []
