"""Counters reported by `GET /_sim/stats`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Stats:
    """Counters exposed by `GET /_sim/stats`."""

    # Submissions whose request arrived whole, counted before the submit delay (refused ones too).
    received: int = 0
    # Submissions accepted (answered with a task id): a refused one is counted below, never here.
    submitted: int = 0
    # Submissions refused by the `refuse` switch (counted in rejected_503 or rejected_402 as well).
    refused: int = 0
    rejected_429: int = 0
    rejected_503: int = 0
    rejected_402: int = 0
    polls_total: int = 0
    # Requests refused for their key (none, or another account's): a key sent where it does not belong.
    unauthorized: int = 0
    callbacks_sent: int = 0
    callbacks_delivered: int = 0
    delivery_requests: int = 0
    # Deliveries refused because their link had lapsed: results the client came for too late.
    deliveries_expired: int = 0
    # Credits charged for the tasks submitted, and how often GET /v1/credits was asked.
    credits_spent: float = 0.0
    credits_requests: int = 0
    max_active_seen: int = 0
    max_active_seen_by_model: dict[str, int] = field(default_factory=dict)
    # Live count per model; the view reports only its sum as "active".
    active_by_model: dict[str, int] = field(default_factory=dict)
