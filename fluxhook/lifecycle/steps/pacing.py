"""Sends paced by storage (``core.pacing``): the rule as the settings and the model catalog give it, and its
judgement, made by each worker's sweep (``lifecycle.sweep``) from the backlog the sweep's one look read."""

from __future__ import annotations

from fluxhook.core.config import Config
from fluxhook.core.pacing import PacingRule
from fluxhook.services import Services
from fluxhook.store.pacing import Judged


def rule_of(config: Config) -> PacingRule:
    """The pacing rule: ``STORE_PACING_SHARE`` of the shortest result URL life the catalog gives (an image's 10
    minutes, unless ``BFL_MODELS_FILE`` says shorter), and ``STORE_PACING_FLOOR``. The shortest of any model, not of
    the models in the backlog: what this saves (a read of each result's life) costs a video-only deployment pacing
    early, never a lost result."""
    lives = [model.result_url_life for model in config.catalog.models.values()]
    return PacingRule(config.store_pacing_share, float(min(lives)) if lives else 600.0, config.store_pacing_floor)


def pace(svc: Services, ready: int | None, now: float) -> Judged | None:
    """Judge whether new sends wait for storage, given ``ready`` results not stored (read by the caller; None: not
    read this time): only at the floor or past it, or while this process's last judgement held them (to lift its
    mark); else None, and nothing asked of Redis."""
    rule = rule_of(svc.config)
    if ready is not None:
        svc.store.pacer.near = ready >= rule.floor // 2
    if ready is None or not rule.on or (ready < rule.floor and not svc.store.pacer.judging):
        return None
    return svc.store.pacer.judge(now, rule)


def backlog_now(svc: Services, now: float) -> Judged:
    """The backlog and the rate storage kept now, as a judgement would find them (nothing written): for /metrics and
    the dashboard."""
    return svc.store.pacer.read(now, rule_of(svc.config))
