"""Simulator settings: start-up options plus the knobs the control API may change."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fluxhook.core.catalog import SHIPPED_CATALOG

WEBHOOK_MODES = ("secret", "hmac", "both")
OUTCOMES = ("ready", "error", "request_moderated", "content_moderated")
IMAGE_FORMATS = ("png", "jpeg")
PRICE_FIELDS = ("cost", "input_mp", "output_mp")
REFUSE_STATUSES = (503, 402)


@dataclass
class SimSettings:
    """Everything the simulator can be configured with; defaults match the CLI."""

    # Start-up only: fixed for the life of the process.
    host: str = "127.0.0.1"
    port: int = 8900
    api_key: str = "sim-key"
    public_url: str | None = None
    verbose: bool = False
    # Runtime knobs: readable and writable through /_sim/settings.
    task_delay: float | None = 0.3
    # Seconds a task that waits to be told (a `[pending]` prompt's, or any while task_delay is null) runs at most
    # before it ends as any task does (its markers' outcome, else `outcome`), calling back: BFL runs no task forever,
    # and a task that runs on holds the account's capacity, and fluxhook's slot of a job canceled meanwhile. Null: it
    # runs until told (the tests' simulators); the dev run's ends after 2 minutes.
    pending_limit: float | None = None
    webhook_mode: str = "secret"
    retry_scale: float = 1.0
    url_ttl: int = 600
    max_active: int = 24
    max_active_kontext_max: int = SHIPPED_CATALOG.models["flux-kontext-max"].max_active or 24
    credits: float | None = None
    image_format: str = "png"
    image_bytes: int | None = None
    drop_callbacks: bool = False
    duplicate_callbacks: bool = False
    callback_delay: float = 0.0
    outcome: str = "ready"
    delivery_fail_status: int | None = None
    delivery_fail_count: int = 0
    delivery_delay: float = 0.0
    delivery_truncate: bool = False
    # Whether each poll of a Ready task mints a fresh link (BFL's way of saving a result whose link lapsed); false:
    # polls give the first link again, so a result downloaded past its link's life is lost (expired) for good.
    fresh_links: bool = True
    # FLUX 3 video (models named *video*): seconds a task takes (Pending, Reasoning, Generating, then
    # Ready), its URLs' life, the MP4's length (null: the seconds the task was priced for, as BFL bills what it
    # makes), the size it is padded to (null: as rendered), the
    # draft-cache bundle's size, and the active limit per organization and endpoint.
    video_delay: float = 3.0
    video_url_ttl: int = 7200
    video_seconds: float | None = None
    video_bytes: int | None = None
    draft_cache_bytes: int = 262_144
    max_active_video: int = SHIPPED_CATALOG.models["flux-3-video"].max_active or 24
    # Polls answered with a 307 to a "regional" host (this one, another path), as BFL may.
    redirect_polls: bool = False
    # Every Nth task accepted (0: none) is handed a polling_url on the gateway host (``gateway_base``), as BFL hands
    # out regional gateways (gateway.bfl.ai); the global host answers such a task's polls 404, as BFL's does.
    gateway_every: int = 0
    # Images as generations look: a scene at the requested size (1 MP by default), not a small swatch.
    scene_images: bool = False
    # BFL out of capacity: every submission is answered 503 while this is on.
    out_of_capacity: bool = False
    # The account's switch, for failover: 503 (down) or 402 (out of credits: its balance reads 0) answers every
    # submission while set, with `Retry-After: refuse_retry_after` when that is set; null serves again.
    refuse: int | None = None
    refuse_retry_after: int | None = None
    # Seconds BFL takes to answer a submission (about 1 s in production): checks and limits are tested with
    # answers that do not come at once.
    submit_delay: float = 0.0
    # Seconds between BFL taking a task and its answer reaching the client (a slow network on the way back): the
    # task runs, the client does not know it yet. Kills "right after BFL accepted" are tested in that window.
    answer_delay: float = 0.0
    # Seconds BFL takes to answer a poll (GET /v1/get_result; about 0.3 s in production): what a check costs a
    # worker's checker, so that a backlog of polls is measured as BFL makes it last.
    poll_delay: float = 0.0
    # The price fields of the answer to a submission: null for the real price (see pricing), or an
    # object that is sent instead, whatever its values (to test what a client makes of bad ones).
    cost_fields: dict | None = None
    # Price fields a Ready result carries beside its status (null: none, as BFL usually does).
    result_cost_fields: dict | None = None
    # Submissions to a model BFL does not have are accepted (as 1-credit images) instead of BFL's 404:
    # for tests that name made-up models.
    any_model: bool = False

    def runtime_dict(self) -> dict[str, Any]:
        """The runtime knobs as a JSON-ready dict (never the api key)."""
        data = asdict(self)
        return {key: data[key] for key in RUNTIME_KEYS}

    def public_base(self) -> str:
        """Base URL that clients should use to reach this simulator."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{self.port}"

    def gateway_base(self) -> str:
        """Base URL of the gateway host: this server under its other name on this machine, ``localhost``."""
        base = urlsplit(self.public_base())
        return urlunsplit((base.scheme, f"localhost:{base.port}" if base.port else "localhost", base.path, "", ""))


_STARTUP_KEYS = ("host", "port", "api_key", "public_url", "verbose")
RUNTIME_KEYS: tuple[str, ...] = tuple(f.name for f in fields(SimSettings) if f.name not in _STARTUP_KEYS)


def _number(value: Any, *, nullable: bool = False, minimum: float | None = 0) -> bool:
    if value is None:
        return nullable
    # bool is an int subclass; True must not pass as a delay of 1 s.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return minimum is None or value >= minimum


def _price_fields(value: Any) -> bool:
    return value is None or (isinstance(value, dict) and set(value) <= set(PRICE_FIELDS))


def _integer(value: Any, *, nullable: bool = False, minimum: int | None = 0) -> bool:
    if value is None:
        return nullable
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return minimum is None or value >= minimum


_VALIDATORS: dict[str, tuple[Any, str]] = {
    "task_delay": (lambda v: _number(v, nullable=True, minimum=None), "a number or null"),
    "pending_limit": (lambda v: v is None or (_number(v) and v > 0), "a number of seconds > 0 or null"),
    "webhook_mode": (lambda v: v in WEBHOOK_MODES, f"one of {list(WEBHOOK_MODES)}"),
    "retry_scale": (_number, "a number >= 0"),
    "url_ttl": (lambda v: _integer(v, minimum=None), "an integer"),
    "max_active": (_integer, "an integer >= 0"),
    "max_active_kontext_max": (_integer, "an integer >= 0"),
    "credits": (lambda v: _number(v, nullable=True, minimum=None), "a number or null"),
    "image_format": (lambda v: v in IMAGE_FORMATS, f"one of {list(IMAGE_FORMATS)}"),
    "image_bytes": (lambda v: _integer(v, nullable=True, minimum=1), "an integer >= 1 or null"),
    "drop_callbacks": (lambda v: isinstance(v, bool), "a boolean"),
    "duplicate_callbacks": (lambda v: isinstance(v, bool), "a boolean"),
    "callback_delay": (_number, "a number >= 0"),
    "outcome": (lambda v: v in OUTCOMES, f"one of {list(OUTCOMES)}"),
    "delivery_fail_status": (
        lambda v: v is None or (_integer(v) and 100 <= v <= 599),
        "an HTTP status code or null",
    ),
    "delivery_fail_count": (_integer, "an integer >= 0"),
    "delivery_delay": (_number, "a number >= 0"),
    "delivery_truncate": (lambda v: isinstance(v, bool), "a boolean"),
    "fresh_links": (lambda v: isinstance(v, bool), "a boolean"),
    "video_delay": (_number, "a number >= 0"),
    "video_url_ttl": (lambda v: _integer(v, minimum=None), "an integer"),
    "video_seconds": (lambda v: v is None or (_number(v) and 0.1 <= v <= 30), "a number from 0.1 to 30 or null"),
    "video_bytes": (lambda v: _integer(v, nullable=True, minimum=1), "an integer >= 1 or null"),
    "draft_cache_bytes": (_integer, "an integer >= 0"),
    "max_active_video": (_integer, "an integer >= 0"),
    "redirect_polls": (lambda v: isinstance(v, bool), "a boolean"),
    "gateway_every": (_integer, "an integer >= 0"),
    "scene_images": (lambda v: isinstance(v, bool), "a boolean"),
    "out_of_capacity": (lambda v: isinstance(v, bool), "a boolean"),
    "refuse": (lambda v: v is None or (_integer(v) and v in REFUSE_STATUSES), f"null or one of {list(REFUSE_STATUSES)}"),
    "refuse_retry_after": (lambda v: _integer(v, nullable=True), "an integer >= 0 (seconds) or null"),
    "submit_delay": (lambda v: _number(v) and v <= 30, "a number from 0 to 30"),
    "answer_delay": (lambda v: _number(v) and v <= 30, "a number from 0 to 30"),
    "poll_delay": (lambda v: _number(v) and v <= 30, "a number from 0 to 30"),
    "cost_fields": (lambda v: _price_fields(v), f"null or an object with only {list(PRICE_FIELDS)}"),
    "result_cost_fields": (lambda v: _price_fields(v), f"null or an object with only {list(PRICE_FIELDS)}"),
    "any_model": (lambda v: isinstance(v, bool), "a boolean"),
}


def validate_updates(updates: Any) -> dict[str, Any]:
    """Check a partial settings update; raise ValueError with a readable message."""
    if not isinstance(updates, dict):
        raise ValueError("body must be a JSON object")
    unknown = sorted(set(updates) - set(RUNTIME_KEYS))
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(unknown)}; known: {', '.join(RUNTIME_KEYS)}")
    for key, value in updates.items():
        check, expected = _VALIDATORS[key]
        if not check(value):
            raise ValueError(f"setting {key!r} must be {expected}, got {value!r}")
    return dict(updates)
