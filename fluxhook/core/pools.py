"""BFL's limits on tasks in flight (pure): which pool a model's tasks count against, with each pool's limit.

Every task counts toward ``BFL_MAX_ACTIVE``; a model named in ``BFL_MODEL_LIMITS`` also has a pool of
its own with its own, smaller limit (the catalog's: BFL's 6 for flux-kontext-max, 5 for flux-3-video) and its own
line, so a model waiting for its own limit never holds up the others.
"""

from __future__ import annotations

from typing import Protocol

from fluxhook.core.catalog import SHIPPED_CATALOG

DEFAULT_POOL = "default"
KONTEXT_MAX_POOL = "flux-kontext-max"
# BFL_MODEL_LIMITS' default: the models the catalog says BFL limits below the account's.
DEFAULT_MODEL_LIMITS: tuple[tuple[str, int], ...] = SHIPPED_CATALOG.limits()
# The pools under the default BFL_MODEL_LIMITS.
POOLS = (DEFAULT_POOL, *(model for model, _ in DEFAULT_MODEL_LIMITS))


def pools(model_limits: tuple[tuple[str, int], ...] = DEFAULT_MODEL_LIMITS) -> tuple[str, ...]:
    """Every pool: the default one, then one per model with a limit of its own."""
    return (DEFAULT_POOL, *(model for model, _ in model_limits))


def pool_for(model: str | None, model_limits: tuple[tuple[str, int], ...] = DEFAULT_MODEL_LIMITS) -> str:
    """The slot pool a model's tasks count against."""
    return model if model and any(model == named for named, _ in model_limits) else DEFAULT_POOL


class Limits(Protocol):
    """What ``pool_limit`` reads of a ``Config`` (which reads its defaults from here)."""

    @property
    def bfl_max_active(self) -> int: ...

    @property
    def bfl_model_limits(self) -> tuple[tuple[str, int], ...]: ...


def pool_limit(config: Limits, pool: str) -> int:
    """How many of the pool's tasks may be in flight at once: never more than BFL_MAX_ACTIVE."""
    return limit_in(config.bfl_max_active, config.bfl_model_limits, pool)


def limit_in(max_active: int, model_limits: tuple[tuple[str, int], ...], pool: str) -> int:
    """How many of ``pool``'s tasks one account may have in flight, under its ``max_active`` and ``model_limits``."""
    for model, limit in model_limits:
        if model == pool:
            return min(limit, max_active)
    return max_active


def merged_limits(limits: list[tuple[tuple[str, int], ...]]) -> tuple[tuple[str, int], ...]:
    """The models with a limit of their own at any account, each once (the pools every account has; an account
    without a limit for one allows its whole max_active there)."""
    merged: dict[str, int] = {}
    for each in limits:
        for model, limit in each:
            merged[model] = max(limit, merged.get(model, 0))
    return tuple(merged.items())
