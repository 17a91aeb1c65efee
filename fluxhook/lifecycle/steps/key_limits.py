"""What an app key's limits allow: its requests a minute, its queued jobs, its credits left today, its route (the BFL
accounts its jobs may use, as the key and each request narrow them), and what it is near.

Which of a job's accounts sends it is decided later, in the atomic step that gives it a slot (``store.slots``): the
least busy that is not cooling down and has room. A new job only records its route (``route_of``), so residency and
billing hold whichever process hands the slot out.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Callable

from fluxhook.core.accounts import ANY_ROUTE, is_finetuned, route_for
from fluxhook.core.batch import MAX_ITEMS
from fluxhook.core.config import Config
from fluxhook.core.errors import InvalidRequest, RateLimited
from fluxhook.core.job_filters import DEFAULT_LIMIT, MAX_LIMIT
from fluxhook.credits import accounting, reports
from fluxhook.lifecycle.steps.callers import Caller
from fluxhook.store.app_keys import LINK_READS, AppKey, AppKeys

if TYPE_CHECKING:
    from fluxhook.services import Services


@dataclass(frozen=True)
class TakenRequest:
    """One submission or track counted against its key's limits: ``requests_per_minute`` (by the ``name`` it has
    there; None when the key sets none) and the ``items`` it makes against ``items_per_minute`` (the key's rate then)
    and ``items_per_day``."""

    key_id: str
    name: str | None
    items: int
    items_per_minute: int


def take_request(svc: "Services", caller: Caller, now: float, items: int = 1) -> TakenRequest | None:
    """Count one submission or track against the key's ``requests_per_minute`` and the ``items`` it makes (jobs or
    batch items) against its ``items_per_minute`` and ``items_per_day`` (None for an admin token), or raise
    RateLimited (nothing counted): what a key can make Redis hold is bounded by its limits. Only accepted requests
    count: one refused afterwards, for whatever reason, is given back (``give_back_request``)."""
    key = caller.key
    if key is None:
        return None
    store = svc.store.app_keys
    per_minute, per_day = key.items_minute_limit(svc.config), key.items_day_limit(svc.config)
    refused, wait = store.take_items(key.id, items, per_minute, items_burst(per_minute), per_day, now)
    if refused == "day":
        raise RateLimited(f"this app key may create {per_day:,} jobs and batch items a UTC day (items_per_day); "
                          f"this request makes {items:,}: retry after the day ends, in {wait:.0f} s", retry_after=wait)
    if refused:
        raise RateLimited(f"this app key may create {per_minute:,} jobs and batch items a minute (items_per_minute, "
                          f"at most {items_burst(per_minute):,} at once); this request makes {items:,}: retry in "
                          f"{wait:.1f} s", retry_after=wait)
    taken = TakenRequest(key.id, None, items, per_minute)
    if key.requests_per_minute is None:
        return taken
    name = secrets.token_hex(16)
    wait = store.take_request(key.id, key.requests_per_minute, now, name)
    if wait > 0:
        give_back_request(svc, taken)
        raise RateLimited(f"this app key may submit or track {key.requests_per_minute} jobs a minute; "
                          f"retry in {wait:.1f} s", retry_after=wait)
    return replace(taken, name=name)


def give_back_request(svc: "Services", taken: TakenRequest | None) -> None:
    """A counted request was refused after all (BFL's refusal, a budget's, another key's task...): it counts
    nothing against ``requests_per_minute`` nor its key's items."""
    if taken is None:
        return
    store = svc.store.app_keys
    store.give_back_items(taken.key_id, taken.items, taken.items_per_minute, time.time())
    if taken.name is not None:
        store.give_back_request(taken.key_id, taken.name)


def queue_limit(svc: "Services", caller: Caller) -> int:
    """The most jobs and batch items the caller may hold queued for BFL: its key's ``max_queued``, else
    ``MAX_QUEUED_PER_KEY``, which also holds the admin tokens' together (they count as one key, as in the slots' fair
    share): Redis's room is the operator's too, and a runaway script with an admin token fills it as fast."""
    key = caller.key
    return key.max_queued if key is not None and key.max_queued is not None else svc.config.max_queued_per_key


def hold_batch_room(svc: "Services", caller: Caller, batch_id: str, items: int) -> None:
    """Hold room in the caller's queue for the ``items`` of batch ``batch_id`` before any is made, which they take as
    they are made (``Slots.join_all``); ``QueueFull`` (429), nothing held, when they would pass ``queue_limit``: a batch
    is refused whole, never made in part."""
    svc.slots.hold_queue_room(caller.key_id, batch_id, items, queue_limit(svc, caller))


def give_back_batch_room(svc: "Services", caller: Caller, batch_id: str) -> None:
    """The room held for batch ``batch_id``'s items comes back at once: it was refused before it was recorded."""
    svc.slots.give_back_queue_room(caller.key_id, batch_id)


def check_queue_room(svc: "Services", caller: Caller) -> None:
    """``QueueFull`` (429) when the caller's queue has no room for one more job: a track is refused then, as a
    submission would be (a key at its limit is told to wait, whatever it asks to add), though it queues nothing."""
    svc.slots.check_queue_room(caller.key_id, queue_limit(svc, caller))


# Every request of an app key is a read of one unit against its ``reads_per_minute`` (else READS_PER_MINUTE), cheap
# or not (a job, an image, a variant, a stream's start...): what a key makes the web do costs that key, and a flood of
# cheap reads is refused at its rate. Submissions and tracks are not reads: ``requests_per_minute`` counts them.
# A read of a job list counts one unit for each page of this many jobs it asks for (``limit=100`` counts 5): what it
# costs the web process is mostly the records it reads and answers.
READ_PAGE = DEFAULT_LIMIT
# Opening a stream counts one: GET /v1/events's first jobs are read once for every stream a caller opens within a
# second (``stream_hub.FIRST_EVENTS_SHARED_SECONDS``), and MAX_STREAMS_PER_CALLER bounds how many it holds.
STREAM_READ_COST = 1
# The largest read: a page of MAX_LIMIT jobs (and a batch's results, whatever its size).
LARGEST_READ = -(-MAX_LIMIT // READ_PAGE)
# A search that reads this many characters of prompts from Redis costs its key one more read (about 50 prompts of
# 2,000 characters; a warm search reads none).
SEARCH_CHARS_PER_READ = 100_000
# A key may read this share of a minute's reads at once (at least the largest read), then at its rate.
BURST_SHARE = 10


def read_cost(limit: int) -> int:
    """The units a job list asking for ``limit`` jobs counts against its key's read rate."""
    return max(1, -(-limit // READ_PAGE))


def read_burst(per_minute: int) -> int:
    """The units a key may spend at once: a tenth of its minute's, never less than the largest read."""
    return max(LARGEST_READ, per_minute // BURST_SHARE)


def charge_search(store: AppKeys, config: Config, caller: Caller, prompt_chars: int, now: float) -> None:
    """A search's prompts read from Redis (not from the process's cache), counted against its key's reads after the
    fact, one unit per ``SEARCH_CHARS_PER_READ`` characters: a key whose searches make the web read megabytes pays for
    them, and its next reads wait (a key's long searches cost only its own key). Admin tokens are not limited."""
    key = caller.key
    units = prompt_chars // SEARCH_CHARS_PER_READ
    if key is None or units <= 0:
        return
    per_minute = key.reads_limit(config)
    store.charge_read(key.id, per_minute, read_burst(per_minute), units, now)


def take_read(store: AppKeys, config: Config, caller: Caller, cost: int, now: float) -> None:
    """Count one request of ``cost`` units against the caller's key (its ``reads_per_minute``, else
    READS_PER_MINUTE), or raise RateLimited with the seconds until it would be admitted (nothing counted). An admin
    token is not limited. A key already refused is refused from this process's memory, with no Redis step, until
    its bucket could admit a read (``AppKeys.take_read``)."""
    key = caller.key
    if key is None:
        return
    per_minute = key.reads_limit(config)
    wait = store.take_read(key.id, per_minute, read_burst(per_minute), cost, now)
    if wait > 0:
        raise RateLimited(f"this app key may make {per_minute} reads a minute (its reads_per_minute, else "
                          f"READS_PER_MINUTE; every request but a submission counts one, a page of more than "
                          f"{READ_PAGE} jobs one per {READ_PAGE}); retry in {wait:.1f} s", retry_after=wait)


# A job's files opened by their signed links (``image.url``, ``srcset``, ``video.url``...) count against a bucket of
# the job's key of their own, at this many times its reads_per_minute: they are its users' <img> tags, not its own API
# calls. One bucket for both would let an app starve the page it serves its users (25 images a view) with its own API
# reads, or its API reads with a busy page; no bucket would let a key read without end through the links of its own
# jobs. At the default 600 that is 6,000 a minute, 100 a second, at most 600 at once. Behind a cache, what reaches the
# bucket is the cache's misses: each variant once per window, spread over it since each job's window turns at a moment
# of its own (``signing.window_offset``), so the bucket holds a catalog of ``link_catalog`` variants; a page served to
# more people goes through a cache, and a larger catalog's key raises its reads_per_minute.
LINK_READS_SHARE = 10


def link_catalog(links_per_minute: int, window: int) -> int:
    """The variant links (a job's image at one width and format) a cache in front may refill within a key's link
    reads (``links_per_minute``) as their windows turn over ``window`` seconds: a window's worth of the allowance,
    as the turns are spread evenly over it. At the defaults, 6,000 a minute over an hour: 360,000, a catalog of
    40,000 images in three widths and three formats."""
    return links_per_minute * window // 60


def take_link_read(store: AppKeys, config: Config, key_id: str | None, find_key: Callable[[str], AppKey | None],
                   now: float) -> None:
    """Count one read of a job's file by its signed link against the job's key (``key_id``; ``find_key`` reads its
    record, asked only once memory has no refusal for it), or raise RateLimited. Nothing for an admin's job or a key
    that no longer exists."""
    if key_id is None:
        return
    wait = store.refused_for(key_id, 1, now, LINK_READS)
    key = find_key(key_id) if wait <= 0 else None
    per_minute = 0  # refused from memory: the key's record is not read, nor its allowance told
    if key is not None:
        per_minute = key.reads_limit(config) * LINK_READS_SHARE
        wait = store.take_read(key_id, per_minute, read_burst(per_minute), 1, now, LINK_READS)
    if wait > 0:
        catalog = (f": a cache's refills of {link_catalog(per_minute, config.image_url_window_seconds):,} variant "
                   f"links a window" if per_minute else "")
        raise RateLimited(f"the signed links of this app key's jobs were read as often a minute as they may be "
                          f"({LINK_READS_SHARE} times the key's reads_per_minute, else READS_PER_MINUTE{catalog}); "
                          f"retry in {wait:.1f} s, or serve them through a cache, which may keep their answers a "
                          f"year", retry_after=wait)


# What a key's bucket of items (``items_per_minute``) holds when full: half a minute's, and never less than one whole
# batch of the largest size, so a batch is never refused for its size alone. At the default 20,000 a minute that is
# exactly one 10,000-item batch at once, refilled in half a minute; a key limited to 100 a minute may still make one
# such batch, then waits 100 minutes for the next.
ITEMS_BURST_SHARE = 2


def items_burst(per_minute: int) -> int:
    """The items a key may create at once under ``per_minute``: ``per_minute / ITEMS_BURST_SHARE``, at least
    ``MAX_ITEMS``."""
    return max(MAX_ITEMS, per_minute // ITEMS_BURST_SHARE)


def credits_left_today(svc: "Services", key: AppKey, now: float) -> float | None:
    """What the key may still spend today under its ``daily_credits`` (never below 0); None without that limit."""
    if key.daily_credits is None:
        return None
    spent = accounting.from_micro(reports.spent_today(svc, now, key_id=key.id))
    return max(0.0, round(key.daily_credits - spent, 6))


def key_route(svc: "Services", key: AppKey) -> str | None:
    """The route of the key's jobs that name no account (None when its accounts and region match none now)."""
    try:
        return route_for(svc.config.accounts, key_accounts=key.accounts, key_region=key.region)
    except InvalidRequest:
        return None


def route_of(svc: "Services", caller: Caller, model: str, account: str | None) -> str | None:
    """The route of a new job of ``model`` for ``caller`` naming ``account`` (None: any its key may use); None when it
    may use every account. ``Forbidden`` for an account its key may not use, ``InvalidRequest`` for one that does
    not exist or a finetune that could reach more than one endpoint."""
    key = caller.key
    route = route_for(svc.config.accounts, key_accounts=key.accounts if key else None,
                      key_region=key.region if key else None, account=account, finetuned=is_finetuned(model))
    return None if route == ANY_ROUTE else route


def tracking_account(svc: "Services", caller: Caller, account: str | None) -> str:
    """The account a task sent elsewhere is polled through: the one named, else the first the caller's key may use."""
    route = route_of(svc, caller, "", account)
    return svc.slots.accounts_for([route])[route][0]


# A key is near its daily credits from this share of them on.
NEAR_SHARE = 0.8
# A key expiring within this many seconds is near its end.
NEAR_EXPIRY = 7 * 86400


def near_limits(key: dict, now: float) -> list[str]:
    """What a key object (as ``described`` gives it) is close to, in words; empty if nothing (or it is revoked
    or expired: it is past its limits, not near them)."""
    if key["revoked_at"]:
        return []
    found = []
    if key["daily_credits"] and key["spent_today"] >= NEAR_SHARE * key["daily_credits"]:
        found.append(f"spent {key['spent_today']:g} of its {key['daily_credits']:g} daily credits")
    if key["max_active"] and key["active"] >= key["max_active"]:
        found.append(f"{key['active']} jobs at BFL, its max_active"
                     + (f", {key['queued']} more waiting" if key["queued"] else ""))
    if key["expires_at"] and 0 < datetime.fromisoformat(key["expires_at"]).timestamp() - now <= NEAR_EXPIRY:
        found.append(f"expires at {key['expires_at']}")
    return found
