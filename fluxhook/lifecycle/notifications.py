"""Notifications to the user's app: which settings a job's notifications follow, the messages made of
its events, and the operator's console over them (listing, replay, enabling a disabled target). One attempt of
one message is ``delivering``.

A job's events enter the outbox in the script that changes the job (``lua/job_transition.lua``): its end always, when it
has a target; ``job.submitted`` and ``job.progress`` when its record's ``notify_events`` asks. A worker's notifier
(``worker/notifying.py``) takes them in two hand-offs: ``due_attempts`` makes each event into messages (``enter``: one
per distinct target, each a hash of its own in ``store.deliveries`` with the ``webhook-id`` every attempt and replay
carries), due at once, and takes those whose attempt is due by every line's rule (turns between keys by weight, then
between a key's end users, single jobs before batch items, then the earliest deadline: its job's when that comes first,
else its due time) as far as their receiver has room; ``delivering.deliver`` makes the attempt. A retry is due again in
the same set, taken by the same rule. At least once: a member leaves the outbox only in the MULTI that keeps its
messages, and a message leaves the due set only when an attempt of it has ended.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from fluxhook.core.batch import Batch
from fluxhook.core.config import Config
from fluxhook.core.errors import DeliveryNotFound, InvalidRequest
from fluxhook.core.holds import ATTEMPT_LEASE
from fluxhook.core.job import Job
from fluxhook.core.notify_rules import (
    BATCH_ENDED,
    ENDED,
    PROGRESS,
    PROGRESS_GAP,
    SUBMITTED,
    check_form,
    check_notify_url,
    field_wording,
    parse_events,
    wanted,
)
from fluxhook.core.outcomes import DeliveryOutcome
from fluxhook.lifecycle.steps.presenting import present
from fluxhook.services import Services
from fluxhook.store.app_keys import AppKey
from fluxhook.store.deliveries import BFL, DISABLED, PENDING, STATES, WEBHOOK, Attempt, Message, target_of
from fluxhook.store.owners import owner_of, tag

log = logging.getLogger("fluxhook.notifications")

_URL_WORDING = field_wording("notify_url")
# Most outbox members one notifier takes at a time; the rest wait for its next look.
NOTIFY_BATCH = 500
# Most messages one replay call sends again; most index entries one listing or replay reads, this many at a time.
MAX_REPLAY = 10_000
MAX_SCANNED = 20_000
SCAN_BATCH = 2_000
# Past this many messages a job makes no more job.progress ones (about 5 minutes of progress at one per 5 s).
MAX_MESSAGES_PER_JOB = 64


# -- what a job's notifications follow -------------------------------------------------------------

def requested_url(value: object, config: Config, key: AppKey | None = None) -> str | None:
    """The notify_url to store on a new job of app key ``key`` (None: an admin token's): the request's own (validated),
    else the key's, else ``NOTIFY_URL``, else None. ``InvalidRequest`` for a URL that is not http(s), too long, outside
    ``NOTIFY_HOST_ALLOWLIST``, or, for an admin token's job, with no ``NOTIFY_SECRET`` to sign with (a key has its own).
    """
    if value is None:
        return (key.notify_url if key is not None else None) or config.notify_url
    check_form(value, _URL_WORDING)  # a malformed URL is named before a missing secret
    if key is None and not config.notify_secret:
        raise InvalidRequest("'notify_url' cannot be used: this service has no NOTIFY_SECRET to sign "
                             "notifications with (its operator must set one)")
    return check_notify_url(value, config.notify_host_allowlist, _URL_WORDING)


def requested_events(value: object) -> tuple[str, ...] | None:
    """A request's own ``notify_events`` (None when it sent none: its key's apply); InvalidRequest for a bad one."""
    return None if value is None else parse_events(value)


def ask_events(svc: Services, job: Job, own: tuple[str, ...] | None, key: AppKey | None) -> None:
    """Note on a new job the events beyond its end that its target asked for (its own ``notify_events``, else its
    key's), so its changes put them in the outbox; one it already passed (sent within the request) goes now."""
    events = wanted(own, key.notify_events if key is not None else None)
    if events and job.notify_url:
        svc.store.deliveries.ask_events([job.id], events, SUBMITTED)


# -- the messages of a job's events --------------------------------------------------------------

def message_id(job_id: str, event: str = ENDED, kind: str = WEBHOOK, number: int = 0) -> str:
    """The ``webhook-id`` of a message: the same on every attempt and replay, another for every other message (the
    ``number``-th ``job.progress`` of a job has its own). A job's end keeps ``msg_{job id}``, the id its
    notification has always had. ``store.deliveries.ids_of`` lists them all."""
    if kind == BFL:
        return f"msg_{job_id}_bfl"
    if event == ENDED:
        return f"msg_{job_id}"
    if event == SUBMITTED:
        return f"msg_{job_id}_submitted"
    return f"msg_{job_id}_progress_{number}"


def target_url(job: Job, kind: str) -> str | None:
    """Where a message of ``kind`` goes: the job's notify_url, or the app's own webhook_url (BFL's shape)."""
    return job.app_webhook_url if kind == BFL else job.notify_url


def targets(job: Job, event: str) -> list[tuple[str, str]]:
    """(kind, URL) of each distinct target of the job's ``event``: its notify_url, and at its end the app's own
    webhook of the BFL-compatible API (one message, in BFL's shape, when both name the same URL)."""
    found: dict[str, str] = {}
    if event == ENDED and job.app_webhook_url:
        found[job.app_webhook_url] = BFL
    if job.notify_url and job.notify_url not in found:
        found[job.notify_url] = WEBHOOK
    return [(kind, url) for url, kind in found.items()]


def host_shown(url: str) -> str:
    """The target as shown: its host and port, never its path or query (they may hold the app's own token)."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    return f"{parts.hostname or ''}:{port}"


def due_attempts(svc: Services, most: int, now: float | None = None) -> list[Attempt]:
    """The attempts now the caller's, at most ``most``, once the outbox's due events are messages (``enter``): each
    its message's ``notify_due`` member (``Message.member``) with its lease, the caller's to ``delivering.deliver``."""
    now = time.time() if now is None else now
    taken = svc.store.deliveries.take(now, most)
    if not taken.events_due:
        return taken.attempts
    # Held by the notifier's one lease: an outbox member taken but not made into messages (its process died) is
    # taken again once it lapses, as an attempt is.
    events = svc.jobs.claim_notifications(now, NOTIFY_BATCH, now + ATTEMPT_LEASE)
    if events:
        enter(svc, events, now, taking=most - len(taken.members))
    more = svc.store.deliveries.take(now, most - len(taken.members)).attempts if len(taken.members) < most else []
    return taken.attempts + more


def take_back(svc: Services, name: str, now: float | None = None) -> str:
    """What an older release queued as an RQ task of its own, due for a notifier now: a message (``msg_...``) still
    pending, or a job's end (its id), made into messages. ``DeliveryOutcome.SKIPPED``: the task sends nothing."""
    now = time.time() if now is None else now
    if not name.startswith("msg_"):
        enter(svc, [name], now)
        return DeliveryOutcome.SKIPPED
    message = svc.store.deliveries.get(name)
    if message is not None and message.state == PENDING:
        pipe = svc.redis.pipeline(transaction=True)
        svc.store.deliveries.schedule([message], now, pipe, wake=True)
        pipe.execute()
    return DeliveryOutcome.SKIPPED


def enter(svc: Services, members: list[str], now: float, taking: int = 0) -> int:
    """Make the messages of outbox ``members`` (``<job id>`` for its end, ``<job id>|<event>`` otherwise), those to
    send due at once, taking the members out of the outbox in the same MULTI; how many were made. ``taking``: how many
    the caller, a notifier, takes itself at once; a notifier is woken in the same step for more than that.

    A message that already exists (a repeat after a crash) is not made again. A ``job.progress`` within ``PROGRESS_GAP``
    of the job's last one stays in the outbox until the gap ends, then carries the job as it is: at most one every 5 s
    per job, the latest never lost, and none past ``MAX_MESSAGES_PER_JOB``."""
    store = svc.store.deliveries
    made: list[tuple[Message, int | None]] = []
    later: dict[str, float] = {}
    progressed: dict[str, int] = {}
    for item in members:
        job_id, _, event = item.partition("|")
        event = event or ENDED
        if event == BATCH_ENDED:
            made += _batch_messages(svc, job_id, now)
            continue
        job = svc.jobs.get(job_id)
        if job is None or (event == PROGRESS and job.terminal):
            continue
        number = 0
        if event == PROGRESS:
            count, last = store.progress_of(job_id)
            if count >= MAX_MESSAGES_PER_JOB:
                continue  # its end still goes; a job's progress cannot grow Redis without bound
            if last is not None and now < last + PROGRESS_GAP:
                later[item] = last + PROGRESS_GAP
                continue
            number = progressed[job_id] = count + 1
        owner = owner_of(job.key_id)
        off = store.disabled(owner)
        for kind, url in targets(job, event):
            target = target_of(url)
            made.append((Message(id=message_id(job.id, event, kind, number), job_id=job.id, owner=owner,
                                 event=event, kind=kind, host=host_shown(url), target=target,
                                 state=DISABLED if target in off else PENDING, created_at=now,
                                 bulk=job.batch_id is not None, tag=tag(job.end_user), deadline=job.deadline),
                         store.job_ttl_ms(job.id)))
    existing = store.existing([m.id for m, _ in made])
    fresh = [(m, ttl) for m, ttl in made if m.id not in existing]
    pipe = svc.redis.pipeline(transaction=True)
    for message, ttl in fresh:
        store.add(message, ttl, pipe)
    pending = [message for message, _ in fresh if message.state == PENDING]
    store.schedule(pending, now, pipe, wake=len(pending) > taking)
    for job_id, number in progressed.items():
        store.note_progress(job_id, number, now, pipe)
    done = [m for m in members if m not in later]
    if done:
        svc.jobs.notifications_queued(done, pipeline=pipe)
    if later:
        store.into_outbox(later, pipeline=pipe)
    pipe.execute()
    return len(fresh)


def _batch_messages(svc: Services, batch_id: str, now: float) -> list[tuple[Message, int | None]]:
    """The ``batch.ended`` message of a batch, to its notify_url; none if it is gone or has none."""
    batch = svc.store.batches.get(batch_id)
    if batch is None or not batch.notify_url:
        return []
    owner = owner_of(batch.key_id)
    target = target_of(batch.notify_url)
    state = DISABLED if target in svc.store.deliveries.disabled(owner) else PENDING
    return [(Message(id=f"msg_{batch.id}", job_id=batch.id, owner=owner, event=BATCH_ENDED, kind=WEBHOOK,
                     host=host_shown(batch.notify_url), target=target, state=state, created_at=now),
             svc.store.batches.ttl_ms(batch.id))]


# -- what is sent --------------------------------------------------------------------------------

def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value, ``v1,<base64>``, by the Standard Webhooks reference library."""
    return Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, timezone.utc), body)


def signed_headers(secrets: list[str], msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The headers of one attempt: one signature per secret, space-separated (a rotation's day carries two)."""
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets),
    }


def payload(config: Config, job: Job, event: str, at: float) -> str:
    """The body, Standard Webhooks' shape: ``{"type", "timestamp", "data"}``, ``data`` the job JSON exactly as
    ``GET /v1/jobs/{id}`` answers it when the attempt is made (its signed links fresh), ``timestamp`` when the
    event happened (the message was made)."""
    return _body(event, at, present(config, job))


def batch_payload(batch: Batch, at: float) -> str:
    """A ``batch.ended`` body: the batch object as ``GET /v1/batches/{id}`` answers it when the attempt is made."""
    return _body(BATCH_ENDED, at, batch.to_api())


def _body(event: str, at: float, data: dict) -> str:
    when = datetime.fromtimestamp(at, timezone.utc)
    body = {"type": event, "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "data": data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


# -- the console: every message kept, replayed, a disabled target enabled ---------------------------

def shown(message: Message) -> dict:
    """A message as the API answers it: never its URL (its path or query may hold the app's own token)."""
    return {
        "id": message.id, "job_id": message.job_id, "event": message.event, "kind": message.kind,
        "target": message.host, "state": message.state, "created_at": _iso(message.created_at),
        "attempts": [{"at": _iso(at), "status": status, "error": error, "ms": ms}
                     for at, status, error, ms in message.attempts],
    }


def of_job(svc: Services, job: Job) -> list[dict]:
    """Every message of the job, with each attempt, in the order they were made."""
    return [shown(m) for m in svc.store.deliveries.of_job(job.id)]


def listed(svc: Services, key_id: str | None, *, state: str | None, since: float, until: float,
           limit: int) -> list[Message]:
    """Up to ``limit`` of the caller's messages (app key ``key_id``, None: an admin token's jobs) made from
    ``since`` to ``until``, newest first, in ``state`` if given, among the newest ``MAX_SCANNED`` of that range (a
    narrower range reaches older ones): one call's reads stay bounded whatever a key has kept."""
    if state is not None and state not in STATES:
        raise InvalidRequest(f"'state' must be one of {', '.join(STATES)}")
    found: list[Message] = []
    offset = 0
    while len(found) < limit and offset < MAX_SCANNED:
        batch, read = svc.store.deliveries.of_owner(owner_of(key_id), since, until, offset, SCAN_BATCH)
        found += [m for m in batch if state is None or m.state == state]
        if read < SCAN_BATCH:
            break
        offset += len(batch)
    return found[:limit]


def listed_for_everyone(svc: Services, *, state: str | None, since: float, until: float,
                        limit: int) -> list[Message]:
    """Up to ``limit`` messages of every owner (admin tokens' jobs and each key's) made from ``since`` to ``until``,
    newest first, in ``state`` if given: what an admin token lists and replays unless it names a key, each owner's
    read as ``listed`` reads it."""
    found: list[Message] = []
    for key_id in (None, *svc.store.app_keys.ids()):
        found += listed(svc, key_id, state=state, since=since, until=until, limit=limit)
    return sorted(found, key=lambda m: m.created_at, reverse=True)[:limit]


def of_everyone(svc: Services, state: str, limit: int) -> list[Message]:
    """Up to ``limit`` messages in ``state`` of every owner, newest first: what the dashboard's Deliveries page
    lists."""
    return listed_for_everyone(svc, state=state, since=0.0, until=float("inf"), limit=limit)


def disabled_targets(svc: Services) -> dict[str | None, int]:
    """How many targets a 410 disabled, by key id (None: admin tokens' jobs), for the owners that have any."""
    counts = {key_id: len(svc.store.deliveries.disabled(owner_of(key_id)))
              for key_id in (None, *svc.store.app_keys.ids())}
    return {key_id: count for key_id, count in counts.items() if count}


def find(svc: Services, key_id: str | None, message_id: str) -> Message:
    """The caller's message ``message_id`` (an admin token's: any); DeliveryNotFound for none, or another key's."""
    message = svc.store.deliveries.get(message_id) if message_id.startswith("msg_") else None
    if message is None or (key_id is not None and message.owner != key_id):
        raise DeliveryNotFound(f"no delivery {message_id[:60]!r}")
    return message


def replay(svc: Services, messages: list[Message], now: float) -> int:
    """Send ``messages`` again from now, each with its own ``webhook-id`` and a fresh round of retries (within a
    second: the sweep puts them in line); how many."""
    svc.store.deliveries.again(messages, now)
    log.info("notifications replayed", extra={"count": len(messages)})
    return len(messages)


def enable(svc: Services, key_id: str | None) -> int:
    """Enable the targets a 410 disabled for the key (None: admin tokens' jobs); how many were disabled."""
    count = svc.store.deliveries.enable(owner_of(key_id))
    log.info("notification targets enabled", extra={"key_id": key_id, "count": count})
    return count


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
