"""The simulator's shared state: tasks, counters and settings behind one lock."""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from fluxhook.core.catalog import URL_LIFE_BY_KIND

from . import models, pricing
from .callbacks import CallbackSender, encode_body
from .errors import Rejected
from .images import ImageCache
from .settings import OUTCOMES, SimSettings, validate_updates
from .signing import UrlSigner
from .stats import Stats
from .tasks import STATUS_BY_OUTCOME, CallbackAttempt, Task, new_task, validate_submission
from .videos import VideoCache, draft_bundle

KONTEXT_MAX = "flux-kontext-max"
VIDEO = "video"
DRAFT_EXTENSION = "draft"
# The length of a video task whose answer stated none (a model priced otherwise).
DEFAULT_VIDEO_SECONDS = 5.0
UNLIMITED_CREDITS = 1_000_000


@dataclass
class DeliveryPlan:
    """How the next delivery request should misbehave, decided atomically."""

    delay: float
    fail_status: int | None
    truncate: bool


def _limit_group(model: str) -> str:
    if "video" in model:
        return VIDEO  # FLUX 3 video: a few generations per organization and endpoint
    return KONTEXT_MAX if model == KONTEXT_MAX else "*"


class Simulator:
    """Owns every task and counter; all mutation happens under `self.lock`."""

    def __init__(self, settings: SimSettings) -> None:
        self.lock = threading.Lock()
        self._initial = replace(settings)
        self.settings = replace(settings)
        self.signer = UrlSigner()
        self.images = ImageCache()
        self.videos = VideoCache()
        self.callbacks = CallbackSender(self)
        self.tasks: dict[str, Task] = {}
        self.stats = Stats()
        self._cancel = threading.Event()

    # -- configuration -------------------------------------------------------

    def bind(self, port: int) -> None:
        """Record the port actually bound (matters for `--port 0`)."""
        with self.lock:
            self.settings.port = port
            self._initial.port = port

    def current(self, key: str) -> Any:
        """One setting's current value."""
        with self.lock:
            return getattr(self.settings, key)

    def public_base(self) -> str:
        """Base URL for links handed to clients."""
        with self.lock:
            return self.settings.public_base()

    def settings_view(self) -> dict[str, Any]:
        """The runtime settings as JSON."""
        with self.lock:
            return self.settings.runtime_dict()

    def update_settings(self, updates: Any) -> dict[str, Any]:
        """Merge validated runtime settings; raises ValueError on bad input."""
        clean = validate_updates(updates)
        with self.lock:
            for key, value in clean.items():
                setattr(self.settings, key, value)
            return self.settings.runtime_dict()

    def reset(self) -> None:
        """Forget all tasks and counters and restore the start-up settings."""
        with self.lock:
            # Timers and retry loops of old tasks watch this event and give up.
            self._cancel.set()
            self._cancel = threading.Event()
            for task in self.tasks.values():
                if task.timer is not None:
                    task.timer.cancel()
            self.tasks.clear()
            self.stats = Stats()
            self.settings = replace(self._initial)
        self.images.clear()
        self.videos.clear()

    # -- BFL API -------------------------------------------------------------

    def check_key(self, key: str | None) -> None:
        """Raise 401 unless `key` is the api key."""
        if key is None or not hmac.compare_digest(key.encode(), self.settings.api_key.encode()):
            with self.lock:
                self.stats.unauthorized += 1
            raise Rejected(401, {"detail": "Not authenticated"})

    def credits(self) -> float:
        """Remaining credits, less with each task by its price; unlimited starts at a large number (counts the asking)."""
        with self.lock:
            self.stats.credits_requests += 1
            if self.settings.refuse == 402:
                return 0  # as BFL reads an account that answers 402; the real balance is back with the switch off
            if self.settings.credits is None:
                return round(UNLIMITED_CREDITS - self.stats.credits_spent, 2)
            return self.settings.credits

    def received(self) -> None:
        """A submission's request has arrived whole (its task is made after the submit delay)."""
        with self.lock:
            self.stats.received += 1

    def submit(self, model: str, body: Any) -> Task:
        """Accept a task or raise Rejected (the refuse switch's, then 503, 402, 429, 422 in that order)."""
        errors = validate_submission(model, body)
        with self.lock:
            s = self.settings
            if s.refuse is not None:
                self._refuse(s.refuse, s.refuse_retry_after)
            if s.out_of_capacity:
                self.stats.rejected_503 += 1
                raise Rejected(503, {"detail": "Out of capacity, retry later"}, {"Retry-After": "2"})
            charge = pricing.price(model, body) if isinstance(body, dict) else pricing.price(model, {})
            if s.credits is not None and s.credits < charge["cost"]:
                self.stats.rejected_402 += 1
                raise Rejected(402, {"detail": "Insufficient credits"})
            group = _limit_group(model)
            limit = {KONTEXT_MAX: s.max_active_kontext_max, VIDEO: s.max_active_video}.get(group, s.max_active)
            if self._active_in_group(group) >= limit:
                self.stats.rejected_429 += 1
                raise Rejected(429, {"detail": "Too many active tasks"}, {"Retry-After": "1"})
            if errors:
                raise Rejected(422, {"detail": errors})
            task = new_task(model, body, s.image_format, self._cancel)
            task.answer_cost = dict(charge if s.cost_fields is None else s.cost_fields)
            task.result_cost = None if s.result_cost_fields is None else dict(s.result_cost_fields)
            if s.credits is not None:
                s.credits = round(s.credits - charge["cost"], 2)
            self.stats.credits_spent = round(self.stats.credits_spent + charge["cost"], 2)
            self.tasks[task.id] = task
            self._count_active(model, +1)
            self.stats.submitted += 1
            task.gateway = s.gateway_every > 0 and self.stats.submitted % s.gateway_every == 0
            delay = s.video_delay if task.is_video and s.task_delay is not None else s.task_delay
            if task.seconds is not None:  # the prompt's own length, even when tasks otherwise wait to be told
                delay = task.seconds
            if delay is not None and delay >= 0 and "pending" not in task.markers:
                self._end_after(task, delay)
                if not task.is_video:
                    # The image is made while the task runs, as BFL's is, not when it is first downloaded.
                    threading.Thread(target=self.image_bytes, args=(task,), daemon=True).start()
            elif s.pending_limit is not None:
                # A task kept Pending still ends, as BFL's all do: it holds the account's capacity until then.
                self._end_after(task, s.pending_limit)
        return task

    def polling_url(self, task: Task) -> str:
        """Where the task is to be polled: the gateway host for a gateway task, else this host."""
        with self.lock:
            base = self.settings.gateway_base() if task.gateway else self.settings.public_base()
        return f"{base}/v1/get_result?id={task.id}"

    def poll(self, task_id: str, host: str) -> dict[str, Any] | None:
        """The get_result body for a task polled at ``host`` (None if unknown there); counts the poll."""
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None:
                return None
            task.polled_hosts.append(host)
            if task.gateway and host != urlsplit(self.settings.gateway_base()).netloc:
                return None  # BFL's global host knows no task that lives behind a regional gateway
            task.polls += 1
            self.stats.polls_total += 1
            # Each poll of a Ready task mints a fresh link: how clients recover from expiry (unless fresh links
            # are off: the first link again, lapsed or not).
            sample = None
            if task.outcome == "ready":
                sample = self._sample_url(task, self.settings.url_ttl, self.settings.public_base(),
                                          fresh=self.settings.fresh_links)
            return task.poll_body(sample, self._draft_url(task, self.settings.public_base()), self._running(task))

    def _running(self, task: Task) -> tuple[str, float]:
        """Caller holds the lock. The task's word and progress while it runs, as a poll now reports them."""
        delay = self.settings.video_delay if task.is_video else self.settings.task_delay
        return task.running(time.time(), task.seconds or delay)

    def _refuse(self, status: int, retry_after: int | None) -> None:
        """Caller holds the lock. Raise the switch's answer, counted as refused and never as submitted."""
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        self.stats.refused += 1
        if status == 503:
            self.stats.rejected_503 += 1
            raise Rejected(503, {"detail": "Service unavailable, retry later"}, headers)
        self.stats.rejected_402 += 1
        raise Rejected(402, {"detail": "Insufficient credits"}, headers)

    # -- completion and callbacks -------------------------------------------

    def _end_after(self, task: Task, seconds: float) -> None:
        """Caller holds the lock. Complete the task ``seconds`` from now, unless something completes it first."""
        task.timer = threading.Timer(seconds, self._timer_fired, args=(task,))
        task.timer.daemon = True
        task.timer.start()

    def _timer_fired(self, task: Task) -> None:
        if task.cancel.is_set():
            return
        try:
            self.complete(task.id, expected=task)
        except Rejected:
            pass  # completed meanwhile through the control API

    def complete(self, task_id: str, outcome: str | None = None, *, expected: Task | None = None) -> Task:
        """Finish a Pending task now and start its callback; raises Rejected 404/409."""
        if outcome is not None and outcome not in OUTCOMES:
            raise Rejected(400, {"detail": f"outcome must be one of {list(OUTCOMES)}"})
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None or (expected is not None and task is not expected):
                raise Rejected(404, {"detail": "Task not found"})
            if not task.is_pending:
                raise Rejected(409, {"detail": f"Task already completed ({task.status})"})
            if task.timer is not None:
                task.timer.cancel()
            s = self.settings
            task.outcome = outcome or task.marker_outcome() or s.outcome
            task.status = STATUS_BY_OUTCOME[task.outcome]
            task.completed_at = time.time()
            self._count_active(task.model, -1)
            task.callback_plan = self._callback_plan(task)
            ttl, base = s.url_ttl, s.public_base()
            delay, scale = s.callback_delay, s.retry_scale
        if task.outcome == "ready" and not task.is_video:
            # A task completed early (the control API) has its image too before it is reported Ready.
            self.image_bytes(task)
        if task.callback_plan in ("send", "duplicate"):
            body = self._webhook_bytes(task, ttl, base)
            self.callbacks.schedule(task, body, 2 if task.callback_plan == "duplicate" else 1, delay, scale)
        return task

    def replay_callback(self, task_id: str) -> int | None:
        """Send a completed task's webhook once, synchronously, without retries."""
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None:
                raise Rejected(404, {"detail": "Task not found"})
            if task.is_pending:
                raise Rejected(409, {"detail": "Task is still Pending"})
            if task.webhook_url is None:
                raise Rejected(409, {"detail": "Task has no webhook_url"})
            ttl, base = self.settings.url_ttl, self.settings.public_base()
        return self.callbacks.send_once(task, self._webhook_bytes(task, ttl, base), replay=True)

    def record_callback(self, task: Task, status: int | None, error: str | None, *, replay: bool) -> None:
        """Count one webhook attempt (called by the sender after each POST)."""
        with self.lock:
            task.callback_attempts.append(CallbackAttempt(time.time(), status, error, replay))
            # Attempts for tasks forgotten by a reset must not leak into fresh stats.
            if self.tasks.get(task.id) is not task:
                return
            self.stats.callbacks_sent += 1
            if status is not None and 200 <= status < 300:
                self.stats.callbacks_delivered += 1

    # -- delivery ------------------------------------------------------------

    def delivery_plan(self) -> DeliveryPlan:
        """Count a delivery request and decide which configured fault (if any) it gets."""
        with self.lock:
            s = self.settings
            self.stats.delivery_requests += 1
            fail = None
            if s.delivery_fail_status is not None and s.delivery_fail_count > 0:
                s.delivery_fail_count -= 1
                fail = s.delivery_fail_status
            return DeliveryPlan(s.delivery_delay, fail, s.delivery_truncate)

    def deliverable(self, task_id: str, ext: str) -> Task | None:
        """The Ready task whose image `task_id.ext` names, if any."""
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None or task.outcome != "ready" or ext not in (task.image_format,
                                                                          DRAFT_EXTENSION if task.draft else None):
                return None
            return task

    def image_bytes(self, task: Task) -> bytes:
        """The task's encoded image (generated once, then cached)."""
        if self.current("scene_images") and not self.current("image_bytes"):
            return self.images.get(task.id, task.image_format, self.current("image_bytes"), task.size)
        return self.images.get(task.id, task.image_format, self.current("image_bytes"))

    def video(self, task: Task) -> tuple[bytes, int | None]:
        """The task's MP4 (made once) and the size it is delivered at (padded to ``video_bytes``)."""
        seconds = self.current("video_seconds") or task.answer_cost.get("duration") or DEFAULT_VIDEO_SECONDS
        return self.videos.get(task.id, seconds), self.current("video_bytes")

    def draft_bytes(self, task: Task) -> bytes:
        """The task's draft-cache bundle."""
        return draft_bundle(task.id, self.current("draft_cache_bytes"))

    # -- stats ---------------------------------------------------------------

    def count_expired_delivery(self) -> None:
        """A delivery refused because its link had lapsed."""
        with self.lock:
            self.stats.deliveries_expired += 1

    def stats_view(self) -> dict[str, Any]:
        """Counters as JSON."""
        with self.lock:
            data = asdict(self.stats)
            data.pop("active_by_model")
            data["active"] = sum(self.stats.active_by_model.values())
            data["polls"] = {task_id: t.polls for task_id, t in self.tasks.items() if t.polls}
            return data

    def task_view(self, task_id: str) -> dict[str, Any] | None:
        """Control-API view of one task."""
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None:
                return None
            # What a poll would report now, without counting one: tests compare a job's progress with it.
            word, progress = self._running(task) if task.is_pending else (task.status, None)
            return {**task.public_state(), "reported": {"status": word, "progress": progress}}

    # -- helpers (callers hold the lock where noted) -------------------------

    def _active_in_group(self, group: str) -> int:
        """Caller holds the lock."""
        return sum(n for model, n in self.stats.active_by_model.items() if _limit_group(model) == group)

    def _count_active(self, model: str, delta: int) -> None:
        """Caller holds the lock."""
        by_model = self.stats.active_by_model
        by_model[model] = by_model.get(model, 0) + delta
        if delta > 0:
            seen = self.stats.max_active_seen_by_model
            seen[model] = max(seen.get(model, 0), by_model[model])
            self.stats.max_active_seen = max(self.stats.max_active_seen, sum(by_model.values()))

    def _callback_plan(self, task: Task) -> str:
        """Caller holds the lock."""
        if task.webhook_url is None:
            return "none"
        if "drop" in task.markers or self.settings.drop_callbacks:
            return "dropped"
        if "dup" in task.markers or self.settings.duplicate_callbacks:
            return "duplicate"
        return "send"

    def _sample_url(self, task: Task, ttl: int, base: str, ext: str | None = None, *, fresh: bool = True) -> str:
        exp = self.signer.expiry(self._url_life(task, ttl)) if fresh or task.link_exp is None else task.link_exp
        if ext is None and task.link_exp is None:
            task.link_exp = exp
        sig = self.signer.sign(task.id, exp)
        return f"{base}/delivery/{task.id}.{ext or task.image_format}?exp={exp}&sig={sig}"

    def _url_life(self, task: Task, ttl: int) -> int:
        """Caller holds the lock. The model's own URL life from the catalog (an hour for FLUX 3 Image and the
        tools, 2 hours for FLUX 3 video), scaled as the settings scale its kind's (``url_ttl`` for 10 minutes of
        an image, ``video_url_ttl`` for 2 hours of a video), so a test can shorten them all."""
        kind = "video" if task.is_video else "image"
        setting = self.settings.video_url_ttl if task.is_video else ttl
        entry = models.catalog().get(task.model)
        if entry is None or entry.kind != kind:
            return setting
        return max(1, round(setting * entry.result_url_life / URL_LIFE_BY_KIND[kind]))

    def _draft_url(self, task: Task, base: str) -> str | None:
        if not task.draft or task.outcome != "ready":
            return None
        return self._sample_url(task, self.settings.video_url_ttl, base, DRAFT_EXTENSION)

    def _webhook_bytes(self, task: Task, ttl: int, base: str) -> bytes:
        sample = self._sample_url(task, ttl, base) if task.outcome == "ready" else None
        return encode_body(task.webhook_body(sample, self._draft_url(task, base)))


def current_simulator() -> Simulator:
    """The Simulator of the Flask app handling the current request."""
    from flask import current_app

    return current_app.extensions["simulator"]
