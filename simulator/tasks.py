"""A simulated generation task, its prompt markers, and the JSON shapes BFL uses for it."""

from __future__ import annotations

import hashlib
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from . import models
from .settings import IMAGE_FORMATS

PENDING = "Pending"
# FLUX 3 video's words while a task runs, after Pending (the share of its time each starts at).
RUNNING_PHASES = ((0.0, PENDING), (0.15, "Reasoning"), (0.45, "Generating"))
VIDEO_FORMAT = "mp4"
DEFAULT_SIZE = (1024, 1024)
STATUS_BY_OUTCOME = {
    "ready": "Ready",
    "error": "Error",
    "request_moderated": "Request Moderated",
    "content_moderated": "Content Moderated",
}
MARKERS = frozenset(
    {"error", "content-moderated", "request-moderated", "drop", "dup", "pending", "jpeg", "png"}
)
_OUTCOME_MARKERS = {
    "error": "error",
    "content-moderated": "content_moderated",
    "request-moderated": "request_moderated",
}
ERROR_INFO = {"error": "Generation failed", "message": "Internal error"}
# `[seconds-30]`, `[seconds-0.5]`: a task as long as the prompt says, so one run can mix long and short tasks.
_SECONDS = re.compile(r"\[seconds-(\d+(?:\.\d+)?)\]")


def parse_markers(prompt: str) -> frozenset[str]:
    """The known `[marker]` tokens found in a prompt."""
    return frozenset(re.findall(r"\[([a-z-]+)\]", prompt.lower())) & MARKERS


def parse_seconds(prompt: str) -> float | None:
    """The task length a `[seconds-N]` marker sets (the last one, if several), else None."""
    found = _SECONDS.findall(prompt.lower())
    return float(found[-1]) if found else None


def validate_submission(model: str, body: Any) -> list[dict[str, Any]]:
    """FastAPI-style validation errors for a submission body to ``model`` (empty when valid)."""
    return models.field_errors(model, body)


@dataclass
class CallbackAttempt:
    """One HTTP POST of a task's webhook."""

    at: float
    status_code: int | None
    error: str | None = None
    replay: bool = False


@dataclass
class Task:
    """State of one submitted task; mutated only under the simulator lock."""

    id: str
    model: str
    prompt: str
    seed: int
    image_format: str
    markers: frozenset[str]
    created_at: float
    cancel: threading.Event
    # Seconds until the task completes, from its prompt's `[seconds-N]`; None: the settings' delay.
    seconds: float | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    status: str = PENDING
    outcome: str | None = None
    completed_at: float | None = None
    polls: int = 0
    # Handed a polling_url on the gateway host, and the hosts (``host:port``) its polls came to, in order.
    gateway: bool = False
    polled_hosts: list[str] = field(default_factory=list)
    callback_plan: str | None = None
    callback_attempts: list[CallbackAttempt] = field(default_factory=list)
    timer: threading.Timer | None = field(default=None, repr=False)
    # The price fields of the answer to the submission, and those a Ready result carries (None: none).
    answer_cost: dict[str, Any] = field(default_factory=dict)
    result_cost: dict[str, Any] | None = None
    # A video draft (`draft: true`) also returns a draft_cache; an image is rendered at this size.
    draft: bool = False
    size: tuple[int, int] = DEFAULT_SIZE
    # The names of the submission's fields (not their values: inputs can be large), for tests to see what BFL got.
    fields: tuple[str, ...] = ()
    # When the first link to its result lapses: with fresh links off, every poll gives that link again.
    link_exp: int | None = None

    @property
    def is_video(self) -> bool:
        return self.image_format == VIDEO_FORMAT

    @property
    def is_pending(self) -> bool:
        return self.status == PENDING

    def marker_outcome(self) -> str | None:
        """Outcome forced by a prompt marker, if any."""
        for marker, outcome in _OUTCOME_MARKERS.items():
            if marker in self.markers:
                return outcome
        return None

    def result(self, sample_url: str, draft_url: str | None = None) -> dict[str, Any]:
        """The `result` object of a Ready task (with `draft_cache` for a video draft)."""
        result = {
            "sample": sample_url,
            "seed": self.seed,
            "prompt": self.prompt,
            "start_time": self.created_at,
            "end_time": self.completed_at,
        }
        if draft_url is not None:
            result["draft_cache"] = draft_url
        return result

    @property
    def reasons(self) -> bool:
        """Whether it plans before it generates (FLUX 3: Reasoning, then Generating)."""
        return self.is_video or self.model.startswith("flux-3")

    def running(self, now: float, duration: float | None) -> tuple[str, float]:
        """A pending task's status word and progress: FLUX 3 goes Pending, Reasoning, Generating over ``duration``."""
        if not self.reasons or not duration or duration <= 0:
            return PENDING, 0.5
        share = min(0.99, max(0.0, (now - self.created_at) / duration))
        word = [name for start, name in RUNNING_PHASES if share >= start][-1]
        return word, round(share, 2)

    def poll_body(self, sample_url: str | None, draft_url: str | None = None,
                  running: tuple[str, float] = (PENDING, 0.5)) -> dict[str, Any]:
        """What `GET /v1/get_result` answers for this task."""
        if self.is_pending:
            return {"id": self.id, "status": running[0], "result": None, "progress": running[1]}
        if self.outcome == "ready":
            assert sample_url is not None
            return {"id": self.id, "status": "Ready", "result": self.result(sample_url, draft_url), "progress": 1.0,
                    **(self.result_cost or {})}
        details = ERROR_INFO if self.outcome == "error" else {"Moderation Reasons": ["Simulated moderation"]}
        return {"id": self.id, "status": self.status, "result": None, "progress": None, "details": dict(details)}

    def webhook_body(self, sample_url: str | None, draft_url: str | None = None) -> dict[str, Any]:
        """The JSON a completed task POSTs to its webhook."""
        if self.outcome == "ready":
            assert sample_url is not None
            return {"id": self.id, "status": "Ready", "result": self.result(sample_url, draft_url),
                    **(self.result_cost or {})}
        if self.outcome == "error":
            return {"id": self.id, "status": "Error", **ERROR_INFO}
        return {"id": self.id, "status": self.status}

    def public_state(self) -> dict[str, Any]:
        """Inspection view for the control API; never includes the webhook secret."""
        return {
            "id": self.id,
            "model": self.model,
            "prompt": self.prompt,
            "status": self.status,
            "outcome": self.outcome,
            "image_format": self.image_format,
            "markers": sorted(self.markers),
            "fields": list(self.fields),
            "seconds": self.seconds,
            "webhook_url": self.webhook_url,
            "has_webhook_secret": self.webhook_secret is not None,
            "created_at": self.created_at,
            "completed_at": self.completed_at,
            "polls": self.polls,
            "gateway": self.gateway,
            "polled_hosts": list(self.polled_hosts),
            "callback_plan": self.callback_plan,
            "callback_attempts": [
                {"at": a.at, "status_code": a.status_code, "error": a.error, "replay": a.replay}
                for a in self.callback_attempts
            ],
        }


def _requested_size(body: dict[str, Any]) -> tuple[int, int]:
    """The width and height a submission asks for (64 to 2048 each), else 1 MP."""
    width, height = body.get("width"), body.get("height")
    if all(isinstance(v, int) and not isinstance(v, bool) and 64 <= v <= 2048 for v in (width, height)):
        return width, height
    return DEFAULT_SIZE


def new_task(model: str, body: dict[str, Any], default_format: str, cancel: threading.Event) -> Task:
    """Build a Pending task from a validated submission body."""
    task_id = str(uuid.uuid4())
    prompt = body.get("prompt") or ""
    markers = parse_markers(prompt)
    seed = body.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        seed = int.from_bytes(hashlib.sha256(task_id.encode()).digest()[:4], "big")
    # Precedence: prompt marker, then BFL's own output_format field, then the setting.
    fmt = default_format
    if body.get("output_format") in IMAGE_FORMATS:
        fmt = body["output_format"]
    for marker in IMAGE_FORMATS:
        if marker in markers:
            fmt = marker
    entry = models.catalog().get(model)
    if entry.kind == "video" if entry is not None else "video" in model:  # FLUX 3 video and the video tools
        fmt = VIDEO_FORMAT
    return Task(
        draft=body.get("draft") is True,
        size=_requested_size(body),
        id=task_id,
        model=model,
        prompt=prompt,
        seed=seed,
        image_format=fmt,
        markers=markers,
        seconds=parse_seconds(prompt),
        created_at=time.time(),
        cancel=cancel,
        webhook_url=body.get("webhook_url"),
        webhook_secret=body.get("webhook_secret"),
        fields=tuple(body),
    )
