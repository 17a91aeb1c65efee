"""The slot tests' config and Redis URL, for the tests of slots, model pools and the fair share (their Redis
connection and job store are fixtures of tests/unit/conftest.py)."""

from __future__ import annotations

from fluxhook.core.config import Config


def _config(bfl_max_active_kontext_max: int = 6, **limits) -> Config:
    """A config whose only model with a pool of its own is flux-kontext-max."""
    return Config(redis_url="redis://unused", bfl_api_key="k", secret_key="s" * 32, api_tokens=("t",),
                  bfl_model_limits=(("flux-kontext-max", bfl_max_active_kontext_max),), **limits)


def _url(connection) -> str:
    kwargs = connection.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"
