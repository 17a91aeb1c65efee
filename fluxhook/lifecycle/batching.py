"""Batches: many jobs of one model in one request, each item a job like any other.

Creating one checks every item as ``POST /v1/jobs`` checks a job (the catalog, BFL's schema, the key's models) before
anything exists, then records the batch and its items, in line, in a few round trips: no item is sent here, a worker's
sender sends each as a slot frees. Its items come spooled (``core/batch_items.py``) and are read from the spool a trip
at a time for each pass, the check's then the making's, so a batch of any size holds about a trip of them in memory.
An item waits behind its key's single jobs (its member in line is the bulk form, ``store/owners.py``), and between keys
takes its turn as a job does. Each reserves its budget as it is sent: past a day's credits, the rest of its batch waits.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager as ContextManager
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import chain
from typing import TypeVar

from redis.exceptions import RedisError

from fluxhook.core import job as st
from fluxhook.core import tracing
from fluxhook.core.accounts import pool_for
from fluxhook.core.batch import (
    MAX_ITEMS,
    Batch,
    BatchStatus,
    derives_items,
    interrupted,
    item_job_id,
    item_of,
    new_batch_id,
)
from fluxhook.core.batch_items import NAMED_FIELDS, NAMED_ITEMS, BatchItem, ItemSpool
from fluxhook.core.end_users import EndUserLimits
from fluxhook.core.errors import (
    AlreadyEnded,
    BatchesBusy,
    BatchInterrupted,
    BatchNotFound,
    InputRefused,
    InvalidItems,
    InvalidRequest,
)
from fluxhook.core.heartbeats import beating
from fluxhook.core.holds import BATCH_MAKING_LEASE, CLAIM_LEASE
from fluxhook.core.job import ABORTED_AT_DEADLINE, ABORTED_WITH_BATCH, Job, batch_cancel_ending, job_id_floor
from fluxhook.core.job_filters import JobFilter
from fluxhook.core.pacing import NONE
from fluxhook.core.wait_reasons import Waiting, WaitReason
from fluxhook.credits.budget import request_size
from fluxhook.lifecycle.steps import (
    batch_inputs,
    end_user_limits,
    ending,
    key_limits,
    submission,
    task_inputs,
    timeline,
)
from fluxhook.lifecycle.steps.admission import check_input, strict_input, strict_refusal, unknown_input, usable_model
from fluxhook.lifecycle.steps.callers import Caller
from fluxhook.lifecycle.steps.presenting import present
from fluxhook.media.archives import RESULTS, MemberNames, zip_stream
from fluxhook.services import Services
from fluxhook.store.batch_turns import Rules, Ticket
from fluxhook.store.jobs import Creation
from fluxhook.store.slots import KnownCap

log = logging.getLogger("fluxhook.batches")
T = TypeVar("T")

# Items made per round trip: each one's record and place in line are one script's step (``Slots.join_all``); and
# items read back from their spool at once, to be checked or made (``core/batch_items.py``).
ITEMS_PER_TRIP = 500
# A stored file's name in a batch's archive: its item's index, then what its type is named with.
_SUFFIXES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif",
             "video/mp4": ".mp4", "video/webm": ".webm"}
# How long a cancel waits, all told, for BFL's answers to the sends under way as it ends the batch's items.
CANCEL_SEND_WAIT = 15.0
# How long a cancel's request ends items itself; the sweep ends the rest, ENDS_PER_SWEEP of each batch a sweep, taking
# at most CANCELING_PER_SWEEP batches, each for CLAIM_LEASE s (one whose sweep died is taken again after it).
CANCEL_IN_REQUEST = 2.0
ENDS_PER_SWEEP = 500
CANCELING_PER_SWEEP = 4
# Items made at once, over every web process: making 10,000 items keeps a core and much of Redis's busy for seconds, so
# one batch of the largest size, and small ones beside it, of other keys (a key makes one batch at a time, its own in
# the order they came). The requests waiting for a turn take them in turns between keys, weights included, a turn
# costing its batch's items (``store/batch_turns.py``): one key's flood of batches delays another key's small batch by
# nothing, a large one by the flood's batch being made. A waiter gives up after MAKING_WAIT s, looking at the line itself
# every MAKING_LOOK_EVERY s (a safety net for a wake-up lost with its process, and its lease renewed).
MAKING_ITEMS_AT_ONCE = MAX_ITEMS + 2_000
MAKING_WAIT = 30.0
MAKING_LOOK_EVERY = 2.0
# The threads that check and make a batch's items (and end a canceled one's in its request) run at a lower CPU
# priority (a Linux thread's own nice value), so that on a host of few cores other keys' requests, Redis and the workers
# go first while a batch is made.
MAKING_NICENESS = 10
# Those threads offer the interpreter lock to a waiting request thread after at most this long of their work (``_Pace``).
LET_REQUESTS_RUN_EVERY = 0.001


@dataclass(frozen=True)
class BatchRequest:
    """A caller's ask: ``items`` of ``model`` (those refused for their shape named in it), and what the batch keeps."""

    model: str
    items: ItemSpool
    metadata: dict = field(default_factory=dict)
    # Where the batch's end (and the items' messages its job_events ask for) goes; None: nowhere.
    notify_url: str | None = None
    job_events: tuple[str, ...] = ()
    # Seconds from creation to each item's deadline (``Cancel-After``); None: none.
    cancel_after: int | None = None
    # Whether the request asks for strict input (``Prefer: handling=strict``): an item whose input holds a field the
    # model's schema does not know is refused, as it is for a key with ``strict_input``.
    strict_input: bool = False
    # The app's own user every item is for unless it names its own (``core.end_users``).
    end_user: str | None = None


def create_batch(svc: Services, caller: Caller, request: BatchRequest, *,
                 waiting_room: Callable[[], ContextManager[bool]] = lambda: nullcontext(True)) -> Batch:
    """Check every item, then record the batch and its items (each ``queued``, in its owner's line); the batch as
    recorded. ``InvalidItems`` (400) names each item ``POST /v1/jobs`` would refuse, and nothing is made; the model
    and the key's limits refuse the whole as they refuse a job (``UnknownModel``, ``ModelNotAllowed``,
    ``RateLimited``, ``BudgetExceeded``).

    Its items are checked and made in a turn (``MAKING_ITEMS_AT_ONCE``), taken in turns between keys; waiting for one,
    the request is in ``waiting_room`` (the web process's: a place in it, or False when it has none for this key).
    ``BatchesBusy`` (503) when it found no place or no turn in time; ``BatchInterrupted`` (503) when its making
    stalled past ``BATCH_MAKING_LEASE`` and the sweep cut the batch short meanwhile."""
    if not 1 <= request.items.count <= MAX_ITEMS:
        raise InvalidRequest(f"a batch holds 1 to {MAX_ITEMS:,} items; this one has {request.items.count:,}")
    model = usable_model(svc, caller, request.model)
    # Held as soon as its items are counted, before its turn is waited for: a key at its max_queued is refused (429
    # queue_full, nothing made) without waiting for a turn or holding a place; the items made take the room.
    batch_id = new_batch_id(time.time())
    key_limits.hold_batch_room(svc, caller, batch_id, request.items.count)
    try:
        with _making_turn(svc, caller, request.items.count, waiting_room, batch_id) as making:
            return _aside(_create, svc, caller, request, model, making)
    except BaseException:
        # Refused before it was recorded (its items, no turn in time...): its room comes back now, not at its lapse.
        if svc.store.batches.get(batch_id) is None:
            key_limits.give_back_batch_room(svc, caller, batch_id)
        raise


def _at_lower_priority() -> None:
    """The calling thread runs ``MAKING_NICENESS`` lower than it did from now on (Linux; elsewhere it runs as it did)."""
    thread = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + MAKING_NICENESS))
    except OSError:
        log.debug("batch making keeps its thread's priority", extra={"niceness": MAKING_NICENESS})


def _aside(work: Callable[..., T], *args) -> T:
    """``work(*args)`` on a thread of its own at a lower priority (the request's own thread serves every kind of request
    after: its priority cannot be raised back without privileges), in the request's context (its trace)."""
    with ThreadPoolExecutor(1, thread_name_prefix="batch-making", initializer=_at_lower_priority) as maker:
        return maker.submit(contextvars.copy_context().run, work, *args).result()


class _Pace:
    """Offers the process's interpreter lock to a request thread waiting for it (``sleep(0)`` lets it go) once
    ``LET_REQUESTS_RUN_EVERY`` s of work have passed since it last did, asked once per item checked or made: a lower CPU
    priority alone does not shorten the wait of a request served by the same process, up to Python's switch interval
    (5 ms) each time; offered at every item, the offers would cost more than the items' own work."""

    def __init__(self) -> None:
        self._next = time.perf_counter() + LET_REQUESTS_RUN_EVERY

    def __call__(self) -> None:
        if time.perf_counter() >= self._next:
            time.sleep(0)
            self._next = time.perf_counter() + LET_REQUESTS_RUN_EVERY


@dataclass
class _Making:
    """A request's turn to make a batch (``token``: its ticket's member, ``store/batch_turns.py``), and the batch once
    it is recorded; ``cut`` is set once the sweep cut that batch short (its making seemed to have stopped)."""

    token: str
    # The id its batch is to have, the room for its items held under it.
    held: str
    batch_id: str | None = None
    cut: threading.Event = field(default_factory=threading.Event)


@contextmanager
def _making_turn(svc: Services, caller: Caller, items: int, waiting_room: Callable[[], ContextManager[bool]],
                 held: str) -> Iterator[_Making]:
    """One of the turns to make a batch of ``items``, waited for in the room, held while the body runs (its items
    checked, then made) and said to go on meanwhile (``_making_goes_on``); given back after, to the next waiter."""
    turns, rules = svc.store.batches.turns, _rules()
    with waiting_room() as inside:
        if not inside:
            raise _busy()
        ticket = turns.join(caller.key_id, items, time.time(), rules)
        try:
            _wait_for_turn(svc, ticket)
        except BaseException:
            if turns.leave(ticket, time.time(), rules):  # its turn came as it gave up: given on
                turns.end(ticket, time.time(), rules)
            raise
    making = _Making(ticket.member, held)
    try:
        with _making_goes_on(svc, making):
            yield making
    finally:
        turns.end(ticket, time.time(), rules)


def _wait_for_turn(svc: Services, ticket: Ticket) -> None:
    """Block until ``ticket``'s turn comes: on its wake-up, pushed by whoever gives it the turn, looking at the line
    every ``MAKING_LOOK_EVERY`` s meanwhile. ``BatchesBusy`` after ``MAKING_WAIT`` s without it."""
    turns, give_up = svc.store.batches.turns, time.monotonic() + MAKING_WAIT
    while not ticket.holds:
        left = give_up - time.monotonic()
        if left <= 0:
            raise _busy()
        if turns.wait(ticket, min(MAKING_LOOK_EVERY, left)):
            return
        ticket = turns.look(ticket, time.time(), _rules())


def _rules() -> Rules:
    return Rules(items_at_once=MAKING_ITEMS_AT_ONCE, lease=BATCH_MAKING_LEASE)


def _busy() -> BatchesBusy:
    return BatchesBusy("other batches are being made and this one found no turn; send it again in a few seconds, "
                       "with the same Idempotency-Key (nothing was created)", retry_after=5)


def _create(svc: Services, caller: Caller, request: BatchRequest, model, making: _Making) -> Batch:
    """Check every item, then record the batch and its items, the key's rate limit and budget admitting it as one job."""
    warnings = _check_items(model, request.items, strict=strict_input(caller, request.strict_input))
    route = key_limits.route_of(svc, caller, model.name, None)
    now = time.time()
    taken = key_limits.take_request(svc, caller, now, items=request.items.count)
    for_end_users = None
    try:
        batch = Batch(id=making.held, model=model.name, total=request.items.count, created_at=now,
                      key_id=caller.key_id, metadata=request.metadata, notify_url=request.notify_url,
                      notify_events=request.job_events)
        credits = end_user_limits.for_batch(svc, caller, _end_users(request), now)
        # Kept before any item is made, so that every item's line has its metadata whatever becomes of its record.
        whose = batch_inputs.keep(svc, batch.id, request.items, request.end_user)
        # Each item one request and one queued job of its end user: refused whole (429) past one, as for its key.
        for_end_users = end_user_limits.take_batch(
            svc, caller, {end_user: [item_job_id(batch.id, i) for i in indexes] for end_user, indexes in whose.items()},
            credits, now)
        item_job = partial(_item_job, svc, caller, request, batch, _Placed(route, credits), now)
        # Admitted as one job would be: 402 and nothing made when the day's credits leave nothing.
        first = next(request.items.trips(1))[0]
        assert first is not None  # checked: no item was refused
        submission.check_budget(svc, item_job(0, first), key=caller.key)
        svc.store.batches.create(batch, making_until=time.time() + BATCH_MAKING_LEASE)
        making.batch_id = batch.id
    except BaseException:
        key_limits.give_back_request(svc, taken)
        end_user_limits.give_back_batch(svc, for_end_users)
        batch_inputs.drop(svc, making.held)
        raise
    with tracing.job_span("fluxhook.batch", batch.id):
        try:
            whole = _make_items(svc, caller, model, item_job, request, making)
        except BaseException:
            _cut_short(svc, batch.id)  # else the sweep does, once its making is BATCH_MAKING_LEASE s old
            raise
    if not whole:
        # Cut by the sweep while this process stalled: cut again, so that items a trip made since count too.
        made, asked = _cut_short(svc, batch.id) or (0, batch.total)
        raise BatchInterrupted(f"{interrupted(made, asked)['message']}, with the same Idempotency-Key if you gave one",
                               retry_after=5)
    log.info("batch created", extra={"batch_id": batch.id, "items": batch.total, "model": batch.model})
    return replace(svc.store.batches.get(batch.id) or batch, warnings=warnings)


def _check_items(model, items: ItemSpool, *, strict: bool = False) -> list[dict]:
    """``InvalidItems`` naming every bad item: those refused for their shape as the body was read and those BFL's
    schema for ``model`` refuses (with ``strict``, those holding a field it does not know too), in their order; the
    first ``NAMED_ITEMS`` of them each with its fields (``{"index", "field", "message"}``, at most ``NAMED_FIELDS`` an
    item) and the first three in the message. Else the batch's warnings: the fields of its items' inputs the schema
    does not know, each sent as given, as ``{"index", "field", "message"}``, bounded as the refusals are. The items are
    read from their spool a trip at a time."""
    shaped: dict[int, list[dict]] = {}
    for problem in items.problems:
        shaped.setdefault(problem["index"], []).append(problem)
    named: dict[int, list[dict]] = {}
    warned: dict[int, list[dict]] = {}
    bad, pace = 0, _Pace()
    for index, item in enumerate(chain.from_iterable(items.trips(ITEMS_PER_TRIP))):
        pace()
        # A shape refused is named in ``shaped`` when it is among the first NAMED_ITEMS bad items, as named is.
        if item is None:
            problems = shaped.get(index, [])
        else:
            problems = _schema_problems(model, index, item.input)
            found = unknown_input(model, item.input)
            if strict:
                problems += [{"index": index, "field": where, "message": strict_refusal(said)}
                             for where, said in found]
            elif found and len(warned) < NAMED_ITEMS:
                warned[index] = [{"index": index, "field": where, "message": said}
                                 for where, said in found[:NAMED_FIELDS]]
        if item is None or problems:
            bad += 1
            if len(named) < NAMED_ITEMS:
                named[index] = problems
    if bad:
        indexes = list(named)
        listed = ", ".join(str(i) for i in indexes) + (", ..." if bad > NAMED_ITEMS else "")
        said = "; ".join(f"item {i}: " + ", ".join(f"{p['field']}: {p['message']}" for p in named[i][:2])
                         for i in indexes[:3])
        raise InvalidItems(f"{bad:,} of {items.count:,} items would be refused, at index {listed} ({said}): fix "
                           "them and send the batch again (nothing was created); 'items' names each, with its field",
                           items=[p for i in indexes for p in named[i][:NAMED_FIELDS]])
    return [found for index_warned in warned.values() for found in index_warned]


def _schema_problems(model, index: int, task_input: dict) -> list[dict]:
    """What BFL's schema for ``model`` refuses in the ``index``-th item's input, each ``{"index", "field",
    "message"}``; empty when it takes it."""
    try:
        check_input(model, task_input)
    except InputRefused as exc:
        return [{"index": index, **_field_problem(model.name, detail)} for detail in exc.detail] or \
            [{"index": index, "field": "input", "message": exc.message}]
    return []


def _field_problem(model: str, detail: dict) -> dict:
    """One field BFL's schema refuses (an entry of its 422 ``detail``) as an item's problem: the field under
    ``input``, and what to do."""
    loc = [str(part) for part in (detail.get("loc") or []) if part != "body"]
    where = ".".join(["input", *loc])
    said = str(detail.get("msg") or "refused")
    if detail.get("type") == "extra_forbidden":
        return {"field": where, "message": f"{model} takes no field {'.'.join(loc)!r}: remove it ({said})"}
    if detail.get("type") == "missing":
        return {"field": where, "message": f"{model} needs {'.'.join(loc)!r}: give it under 'input'"}
    return {"field": where, "message": f"BFL's schema for {model} refuses it: {said}; fix {where!r}"}


def _end_users(request: BatchRequest) -> set[str]:
    """The end users a batch's items are for: theirs, and the batch's when some name none."""
    named = request.items.end_users
    unnamed = request.items.count - request.items.refused - sum(named.values())
    return set(named) | ({request.end_user} if request.end_user is not None and unnamed > 0 else set())


@dataclass(frozen=True)
class _Placed:
    """What the items' jobs are made with: their route, and the limits of each of the batch's end users."""

    route: str | None
    limits: dict[str, EndUserLimits]


def _item_job(svc: Services, caller: Caller, request: BatchRequest, batch: Batch, placed: _Placed, now: float,
              index: int, item: BatchItem) -> Job:
    """An item's job, its id its batch's and index's (``item_job_id``: the ids its end user's queue counted)."""
    end_user = item.end_user if item.end_user is not None else request.end_user
    own = placed.limits.get(end_user or "", EndUserLimits())
    return Job(end_user=end_user, end_user_daily_credits=own.daily_credits, end_user_max_active=own.max_active,
               id=item_job_id(batch.id, index), status=st.QUEUED,
               model=batch.model, metadata=item.metadata, input=item.input,
               pool=pool_for(batch.model, svc.config.pooled_limits), created_at=now, updated_at=now, route=placed.route,
               notify_url=request.notify_url if request.job_events else None, key_id=caller.key_id,
               deadline=now + request.cancel_after if request.cancel_after is not None else None,
               batch_id=batch.id, batch_index=index, traceparent=tracing.current_traceparent())


def _make_items(svc: Services, caller: Caller, model, item_job: Callable[[int, BatchItem], Job],
                request: BatchRequest, making: _Making) -> bool:
    """Record the items with their places in line, ``ITEMS_PER_TRIP`` to a round trip, in their order, each trip's
    read from the spool as it comes (``item_job``: an item's job); a large input waits in storage, as a job's does.
    Redis makes one trip's items while the next trip's are prepared here (one thread of its own sends them, one trip at
    a time), so the two take turns less than they would one after the other. False if the sweep cut the batch short
    meanwhile (``making.cut``: its making seemed to have stopped): no more is made."""
    cap = KnownCap(caller.key.max_active if caller.key else None)
    extra_events = tuple(e for e in request.job_events if e != "job.ended")
    batch_id, cut = making.batch_id or "", making.cut
    asked: list[list[str]] = []  # each trip's jobs, once made, when they carry extra events
    index, pace = 0, _Pace()
    # Its thread runs at the priority of the making's thread (``_aside``), which starts it.
    with ThreadPoolExecutor(1, thread_name_prefix="batch-items") as sender:
        sent: Future | None = None
        for items in request.items.trips(ITEMS_PER_TRIP):
            made = []
            for item in items:
                pace()
                assert item is not None  # checked: no item was refused
                made.append(_creation(svc, model, item_job(index, item)))
                index += 1
            if sent is not None:
                sent.result()  # the trip before failed: nothing more is sent
                # Asked before each trip, not only heard from the heartbeat: a process that stalled past the lease
                # (the sweep cut its batch meanwhile) makes no trip after, whichever of its threads runs first.
                if not cut.is_set() and not svc.store.batches.making(batch_id):
                    cut.set()
            if cut.is_set():
                return False
            sent = sender.submit(svc.slots.join_all, made, known_cap=cap)
            if extra_events:
                asked.append([job.id for job, _ in made])
        if sent is not None:
            sent.result()
    for job_ids in asked:
        svc.store.deliveries.ask_events(job_ids, extra_events, "job.submitted")
    return svc.store.batches.made(batch_id)


def _making_goes_on(svc: Services, making: _Making) -> ContextManager[None]:
    """While the body runs, a thread of its own says every ``BATCH_MAKING_LEASE`` / 3 s that the request's making goes on
    (its turn, and its batch's entry once recorded), so neither a long check of many items nor a trip that takes long
    (inputs put in storage) is taken for a dead maker's. Sets ``making.cut`` once it hears that the sweep cut the batch
    short."""

    def beat() -> bool:
        if svc.store.batches.making_went_on(making.token, making.batch_id, time.time(), BATCH_MAKING_LEASE):
            return True
        making.cut.set()
        return False

    return beating(BATCH_MAKING_LEASE / 3, beat, "batch-making", missed=(RedisError,))


def _cut_short(svc: Services, batch_id: str, claimed: float | None = None) -> tuple[int, int] | None:
    """A batch whose making stopped holds the items made and is canceled (``Batches.cut_short``): its items made and
    asked for; None if its making went on since the sweep's ``claimed`` score, or Redis failed the cut (the sweep
    tries again once the batch's making is ``BATCH_MAKING_LEASE`` s old)."""
    try:
        cut = svc.store.batches.cut_short(batch_id, time.time(), claimed)
    except RedisError as exc:
        log.warning("batch not cut short; the sweep will", extra={"batch_id": batch_id, "error": type(exc).__name__})
        return None
    if cut is not None:
        log.warning("batch cut short: its making stopped", extra={"batch_id": batch_id, "made": cut[0],
                                                                 "asked": cut[1]})
    return cut


def finish_unmade(svc: Services, now: float) -> int:
    """The sweep's part of batches whose making stopped (their web process died): each is cut short; how many."""
    claim = now + CLAIM_LEASE
    return sum(_cut_short(svc, batch_id, claim) is not None
               for batch_id in svc.store.batches.claim_unmade(now, CANCELING_PER_SWEEP, claim))


def _creation(svc: Services, model, job: Job) -> tuple[Job, Creation]:
    """The item as recorded (its input in storage if large) and what records it with its place in line."""
    size = len(json.dumps(job.input, separators=(",", ":")))
    if task_inputs.keep(svc, job.id, job.input, size) is None:  # in storage: its record keeps what prices it
        recorded = replace(job, input=None, input_size=request_size(model, job.input or {}).encode())
    else:
        recorded = job  # as made: its input stays in its record, and no copy of the job is needed
    return recorded, svc.jobs.creation(recorded, waiting=timeline.entry(job.id, "waiting", at=job.created_at))


def get_batch(svc: Services, caller: Caller, batch_id: str) -> Batch:
    """The caller's batch, with why its queued items wait when storage holds batch items back (one read, only for a
    running batch with items queued); ``BatchNotFound`` for none or another key's."""
    batch = svc.store.batches.get(batch_id)
    if batch is None or not (caller.admin or batch.key_id == caller.key_id):
        raise BatchNotFound(f"no batch {batch_id[:40]!r}")
    if batch.status != BatchStatus.RUNNING or not batch.counts.get(st.QUEUED) or svc.store.pacer.level_now() == NONE:
        return batch
    return replace(batch, waiting=Waiting(WaitReason.STORAGE))


def list_batches(svc: Services, caller: Caller, *, limit: int, cursor: str | None) -> tuple[list[Batch], str | None]:
    """The caller's batches newest first (an admin's: every batch), ``limit`` at a time."""
    return svc.store.batches.list(caller.key_id, every_owner=caller.admin, limit=limit, cursor=cursor)


def items(svc: Services, batch: Batch) -> Iterator[Job]:
    """The batch's items in their index order, as they are now, ``ITEMS_PER_READ`` at a time (a deleted one left out)."""
    for ids in svc.store.batches.item_ids(batch.id):
        yield from (job for job in svc.jobs.get_many(ids) if job is not None)


def item_page(svc: Services, batch: Batch, start: int, count: int) -> list[Job]:
    """Up to ``count`` of the batch's items from the ``start``-th (0 the first), in their index order, as they are now
    (a deleted one is left out): one page of them, whatever the batch's size."""
    return [job for job in svc.jobs.get_many(svc.store.batches.item_ids_at(batch.id, start, count)) if job is not None]


def cancel_batch(svc: Services, caller: Caller, batch_id: str, *, send_wait: float = CANCEL_SEND_WAIT) -> Batch:
    """Cancel the caller's batch: each item not yet sent ends ``aborted`` (nothing charged); each one BFL has goes on
    and is stored as any item is (docs/api.md: BFL has no cancel, so it is paid for whatever happens), so no item is
    shown in a status it later leaves for another terminal one. The batch is ``canceled`` at once and ends (``ended_at``,
    its ``batch.ended`` message) when its last item does. The batch as it is then, its counts as they stand.
    ``AlreadyEnded`` (409) for a batch every item of which had ended, or one canceled before.

    From the moment of the cancel no item of it is sent (a sender that takes one ends it instead:
    ``steps.submission``). This request ends its items for up to ``CANCEL_IN_REQUEST`` s (a send under way it meets
    is waited for, ``send_wait`` s all told); the sweep ends the rest (``finish_cancels``), so the batch's counts
    reach their end within seconds of it, whatever its size."""
    batch = get_batch(svc, caller, batch_id)
    if batch.ended_at is not None or not svc.store.batches.cancel(batch.id, time.time()):
        raise AlreadyEnded(f"the batch has already {'ended' if batch.ended_at else 'been canceled'}; it stays as it is")
    _aside(partial(_end_items, svc, batch.id, until=time.monotonic() + CANCEL_IN_REQUEST, send_wait=send_wait))
    log.info("batch canceled", extra={"batch_id": batch.id})
    return get_batch(svc, caller, batch.id)


def finish_cancels(svc: Services, now: float) -> int:
    """The sweep's part of canceled batches: end up to ``ENDS_PER_SWEEP`` items of each it claims; how many ended."""
    return sum(_end_items(svc, batch_id, most=ENDS_PER_SWEEP)
               for batch_id in svc.store.batches.claim_canceling(now, CANCELING_PER_SWEEP, now + CLAIM_LEASE))


def _end_items(svc: Services, batch_id: str, *, most: int = MAX_ITEMS, until: float | None = None,
               send_wait: float = 0.0) -> int:
    """End the canceled batch's items not ended yet, from where its cancel went last, up to ``most`` of them or until
    ``until`` (monotonic); how many ended. Its cancel's place is kept, and its batch taken off the sweep's list once
    a pass finds every item ended (one being sent at that moment makes another pass)."""
    cursor, ended, sending = svc.store.batches.cancel_cursor(batch_id), 0, False
    give_up = time.monotonic() + send_wait
    while ended < most and (until is None or time.monotonic() < until):
        ids = svc.store.batches.item_ids_after(batch_id, cursor, ITEMS_PER_TRIP)
        if not ids:
            svc.store.batches.cancel_went_on(batch_id, None if sending else cursor, done=not sending, again_at=time.time())
            return ended
        for job_id, job in zip(ids, svc.jobs.get_many(ids), strict=True):
            cursor = job_id
            if job is None or batch_cancel_ending(job.status) is None:
                continue  # ended, or BFL has it: it goes on
            outcome = ending.end(svc, job.id, batch_cancel_ending, wait=max(0.0, give_up - time.monotonic()))
            ended += outcome == ending.Ended.ENDED
            sending = sending or outcome == ending.Ended.SENDING
            if ended >= most or (until is not None and time.monotonic() >= until):
                break
    svc.store.batches.cancel_went_on(batch_id, cursor, done=False, again_at=time.time())
    return ended


def result_of(svc: Services, job: Job) -> dict:
    """One item's line of its batch's results: its metadata as given (what maps it back to the caller's
    own item), its file with a fresh signed URL, its cost, its error."""
    shown = present(svc.config, job)
    kept = "video" if shown["video"] else "image"
    return {"index": job.batch_index, "job_id": job.id, "status": job.status, "metadata": job.metadata,
            "end_user": job.end_user, kept: shown[kept], "cost": shown["cost"], "error": job.error}


def unsent_job(batch: Batch, index: int, by_cancel: bool, kept: batch_inputs.ItemLine | None) -> Job:
    """The job of an item that ended unsent and keeps no record of its own (``Batches.prune_unsent``), from what its
    batch keeps: how it ended (its bits), its id (its batch's and index's: ``item_job_id``) and what its input in
    storage says (``kept``: its metadata and end user; None for a batch made before it was kept)."""
    ended = ABORTED_WITH_BATCH if by_cancel else ABORTED_AT_DEADLINE
    at = batch.canceled_at if by_cancel and batch.canceled_at is not None else batch.created_at
    return Job(id=item_job_id(batch.id, index), status=st.ABORTED, model=batch.model, key_id=batch.key_id,
               batch_id=batch.id, batch_index=index, created_at=batch.created_at, updated_at=at, completed_at=at,
               error={"code": ended.code, "message": ended.message},
               metadata=kept.metadata if kept is not None else {}, end_user=kept.end_user if kept is not None else None)


def aborted_item(svc: Services, caller: Caller, job_id: str) -> Job | None:
    """The job of the caller's batch item ``job_id`` that ended unsent and keeps no record of its own, as
    ``unsent_job`` shows it, for as long as its batch lives; None for any other id (or another key's)."""
    found = item_of(job_id)
    if found is None:
        return None
    batch = svc.store.batches.get(found[0])
    if batch is None or not (caller.admin or batch.key_id == caller.key_id) or not batch.counts.get(st.ABORTED):
        return None
    by_cancel = svc.store.batches.unsent_at(batch.id, found[1])
    if by_cancel is None:
        return None
    return unsent_job(batch, found[1], by_cancel, batch_inputs.line(svc, batch.id, found[1]))


def list_jobs(svc: Services, filters: JobFilter, limit: int, cursor: str | None) -> tuple[list[Job], str | None]:
    """Jobs newest first as ``Jobs.list`` pages them, and for a batch's items (``filters.batch_id``) those that ended
    unsent without a record of their own among them, in their place (``unsent_job``), where the filters admit them."""
    jobs, next_cursor = svc.jobs.list(filters, limit, cursor)
    unsent = _unsent_listed(svc, filters, cursor, next_cursor)
    if not unsent:
        return jobs, next_cursor
    merged = sorted([*jobs, *unsent], key=lambda job: job.id, reverse=True)
    if len(merged) <= limit:
        return merged, next_cursor
    return merged[:limit], merged[limit - 1].id


def _unsent_listed(svc: Services, filters: JobFilter, cursor: str | None, listed_to: str | None) -> list[Job]:
    """The jobs ``unsent_job`` shows of ``filters.batch_id``'s items that the filters admit, whose ids are below
    ``cursor`` and, while the listed page has a next one, above its end ``listed_to`` (the page's own span)."""
    batch = svc.store.batches.get(filters.batch_id) if filters.batch_id else None
    if batch is None or not batch.counts.get(st.ABORTED) or not derives_items(batch.id) \
            or filters.account is not None or filters.text is not None \
            or filters.status not in (None, st.ABORTED) or filters.model not in (None, batch.model) \
            or (filters.key_id is not None and filters.key_id != batch.key_id):
        return []
    def admitted(job_id: str) -> bool:
        return ((filters.since is None or job_id >= job_id_floor(filters.since))
                and (filters.until is None or job_id < job_id_floor(filters.until))
                and (cursor is None or job_id < cursor) and (listed_to is None or job_id > listed_to))

    wanted = {index: by_cancel for index, by_cancel in svc.store.batches.unsent(batch.id).items()
              if admitted(item_job_id(batch.id, index))}
    if not wanted:
        return []
    kept = enumerate(batch_inputs.lines(svc, batch.id))
    found = [unsent_job(batch, index, by_cancel, next((line for at, line in kept if at == index), None))
             for index, by_cancel in sorted(wanted.items())]
    return [job for job in found if filters.end_user is None or job.end_user == filters.end_user]


def _lines(svc: Services, batch: Batch) -> Iterator[dict]:
    """Every item's line in the items' order: those with a record, and between them those ended unsent without one
    (``unsent_job``), their metadata read from the batch's input in storage as they come."""
    unsent = sorted(svc.store.batches.unsent(batch.id).items()) if batch.counts.get(st.ABORTED) else []
    kept = enumerate(batch_inputs.lines(svc, batch.id)) if unsent else iter(())

    def line(index: int, by_cancel: bool) -> dict:
        shown = result_of(svc, unsent_job(batch, index, by_cancel, next((x for at, x in kept if at == index), None)))
        # A batch made before its items' ids were its own and its index's: its unsent items' ids went with them.
        return shown if derives_items(batch.id) else {**shown, "job_id": None}

    at = 0
    for job in items(svc, batch):
        while at < len(unsent) and unsent[at][0] < (job.batch_index or 0):
            yield line(*unsent[at])
            at += 1
        yield result_of(svc, job)
    for index, by_cancel in unsent[at:]:
        yield line(index, by_cancel)


def results(svc: Services, batch: Batch) -> Iterator[bytes]:
    """The batch's results as JSON lines, one per item in the items' order, read a page of items at a time."""
    for line in _lines(svc, batch):
        yield (json.dumps(line, separators=(",", ":")) + "\n").encode()


def archive(svc: Services, batch: Batch, *, name_from: str | None = None) -> Iterator[bytes]:
    """A ZIP of every stored file of the batch, each named by its item's index (``00042.jpg``), or with ``name_from``
    from that field of its item's metadata as the command's download names them (``MemberNames``), then its results
    (``results.jsonl``), streamed: memory flat whatever the files' sizes and number."""
    names = MemberNames(name_from) if name_from is not None else None

    def stored() -> Iterator[tuple[str, partial]]:
        for job in items(svc, batch):
            kept = job.video or job.image
            if job.status == st.STORED and job.storage_key and kept:
                suffix = _SUFFIXES.get(str(kept.get("content_type")), "")
                name = f"{job.batch_index:05d}{suffix}"
                yield names.name(name, job.metadata) if names else name, partial(svc.storage.open, job.storage_key)
    return zip_stream(stored(), [(RESULTS, results(svc, batch))])
