"""BFL's limits on tasks in flight: which pool a model's tasks count against, and each pool's limit (pure)."""

from __future__ import annotations

from fluxhook.bfl.client import CALL_BOUND
from fluxhook.config import Config

DEFAULT_POOL = "default"
KONTEXT_MAX_POOL = "flux-kontext-max"
POOLS = (DEFAULT_POOL, KONTEXT_MAX_POOL)
# The one-hour limit on a task, plus the sweep's margin to time the job out first.
SLOT_LEASE = 3600 + 120
# A job given a slot must reach BFL within this long, or the sweep hands it back to the queue
# (once the submission's lock, as long, has lapsed: see submission).
SUBMIT_LEASE = CALL_BOUND


def pool_for(model: str | None) -> str:
    """The slot pool a model's tasks count against."""
    return KONTEXT_MAX_POOL if model == KONTEXT_MAX_POOL else DEFAULT_POOL


def pool_limit(config: Config, pool: str) -> int:
    """How many of the pool's tasks may be in flight at once."""
    if pool == KONTEXT_MAX_POOL:
        # BFL's 6 for flux-kontext-max comes on top of its overall limit: never more than BFL_MAX_ACTIVE.
        return min(config.bfl_max_active_kontext_max, config.bfl_max_active)
    return config.bfl_max_active
