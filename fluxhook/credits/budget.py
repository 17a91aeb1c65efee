"""The daily credit budget, ``BFL_DAILY_CREDIT_LIMIT``: its rules, the bound a submission reserves before BFL
states its price, and the submission's use of them.

BFL tells a task's price only in its answer to the submission, so the check before submitting reserves something: an upper bound
for that very request, from the model catalog's price rule (``bound``; docs/budgets.md). A submission whose bound fits in what is
left (the limit less the day's spend and the live reservations) reserves it; one with no bound yet, or a bound larger than what is
left, is sent alone while credits remain (when no other reservation is live, reserving all that is left) and otherwise waits for
the others to settle. The jobs that go alone take turns between owners, weighted as slots are: one key's queue of them holds
another key's boundable job back for one send alone at most, and a stream of boundable jobs cannot hold the next one alone back.
So the day's spend ends at most one job's price above the limit, whatever the concurrency. BFL's answer settles it: the
reservation goes and the real price is spent, in the one atomic step that records the submission; a submission that fails releases
it. The check and the reservation are one Lua script over a list of limits (``store/lua/budget_reserve.lua``), so two processes
never both pass the last credit, and another limit (an app key's) is one more entry of the list.

``POST /v1/jobs`` asks the budget before it creates the job, so a refused request creates nothing; it reserves nothing then,
but for its end user's daily credits, where it holds its bound from then until it settles: an end user's burst is admitted
as the same jobs one at a time would be, the rest refused at the door (``end_user_admit``). A job
reserves when it is sent, holding a slot (in the request, or in a worker's sender), and BFL's answer settles it: only jobs being
sent hold reservations, so a job that waits for a slot, its key's ``max_active``, its account's day or a cooling account holds
none against anyone's limit. A queued job refused waits on its own, asleep until the next UTC day or its hour is up
(``recheck_in``), or until its limit is raised; one that waits to go alone is looked at every ``ALONE_RECHECK`` seconds, its
record of waiting keeping its turn; a boundable one held by a send alone, at each sweep (``BOUNDED_RECHECK``). Each goes back in
line only once the budget would let it go, so it never takes a slot ahead of the job it waits for, nor turns from other app keys'
jobs while its own key's day is spent.
A reservation lives ``RESERVATION_LEASE`` seconds, so one left by a process that died frees itself.

The bound: the budget reserves the most the catalog's price rule can charge for the request: its output size as BFL reads
``width`` and ``height`` (whole numbers in any JSON form, as BFL's schema coerces them; anything it could not read counts as the
model's largest output), at most the model's largest output and at least the first megapixel BFL charges whole; every input image
BFL reads at the most megapixels the catalog says it reads from one; a video's seconds and batch likewise; and where the price
depends on request fields (FLUX 3 Image's resolution class, FLUX 3 Video's mode, draft and resolution), the rate those fields
select, the highest when they select none. The bound is never learned from earlier answers, so no caller can lower another's bound
by what it sends first. BFL's stated price settles the reservation; one above the bound is counted, and its model's requests go
alone from then on (``check_price``). A model the catalog cannot bound (no price) has no bound: its requests go alone.
"""

from __future__ import annotations

import logging
import math
import re
import time
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple, NoReturn

from fluxhook import metrics
from fluxhook.bfl.reports import Cost
from fluxhook.core.accounts import Account
from fluxhook.core.catalog import MEGAPIXEL, Model
from fluxhook.core.end_users import named
from fluxhook.core.errors import BudgetExceeded, EndUserBudgetExceeded
from fluxhook.core.holds import RESERVATION_LEASE
from fluxhook.core.job import Job
from fluxhook.core.wait_reasons import Waiting, WaitReason
from fluxhook.credits import accounting
from fluxhook.store.app_keys import AppKey
from fluxhook.store.owners import owner_of
from fluxhook.store.prices import PriceCheck
from fluxhook.store.usage import BFL_ACCOUNT_LIMIT, END_USER_LIMIT, KEY_LIMIT, Limit, Reservation, ReserveMode

if TYPE_CHECKING:
    from fluxhook.services import Services

log = logging.getLogger("fluxhook.budget")

# A job waiting to go alone is tried again this soon: the others settle as soon as BFL answers them.
ALONE_RECHECK = 2.0
# A boundable job waiting for a send alone to settle is tried again this soon, at the next sweep: it waits for
# that one price, BFL's answer to one submission, about a second (docs/callbacks.md: it is sent within 3 s).
BOUNDED_RECHECK = 0.5


def seconds_until_next_day(now: float) -> float:
    moment = datetime.fromtimestamp(now, timezone.utc)
    midnight = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(0.0, midnight.timestamp() - now)


def recheck_in(now: float, gives_up_at: float) -> float:
    """How long a queued job refused for the day's credits sleeps out of line: until its reason ends, the day's turn,
    or until ``gives_up_at`` (its hour is up), whichever comes first. Nothing looks at it meanwhile: a raised limit
    wakes its owner's held jobs (``Slots.wake_aside``), so it costs Redis nothing while it waits."""
    return max(1.0, min(seconds_until_next_day(now), gives_up_at - now))


def refusal(spent: int, reserved: int, limit: float, now: float) -> str:
    """The message of a ``budget_exceeded`` answer."""
    held = f", {accounting.from_micro(reserved):g} more reserved by submissions under way" if reserved else ""
    return (f"today's credits are spent: {accounting.from_micro(spent):g} of BFL_DAILY_CREDIT_LIMIT {limit:g}{held}; "
            f"new submissions are refused {_until_tomorrow(now)}")


def _until_tomorrow(now: float) -> str:
    hours, rest = divmod(int(seconds_until_next_day(now)), 3600)
    return f"until 00:00 UTC (in {hours} h {rest // 60} min)"


def summary(spent: int, reserved: int, limit: float | None, refused: bool = False) -> tuple[bool, str]:
    """Today's spend against the limit in words, and whether new submissions are refused now (``refused``,
    as ``standing`` found it)."""
    held = f" ({accounting.from_micro(reserved):,g} more reserved by submissions under way)" if reserved else ""
    if limit is None:
        return False, f"spent today {accounting.from_micro(spent):,g} credits{held}; no BFL_DAILY_CREDIT_LIMIT"
    share = accounting.from_micro(spent) / limit
    text = (f"spent today {accounting.from_micro(spent):,g} of BFL_DAILY_CREDIT_LIMIT {limit:,g} credits "
            f"({share:.0%}){held}")
    return refused, text + ("; new submissions are refused until 00:00 UTC" if refused else "")


class EndUserBudget(NamedTuple):
    """An end user's daily credits with its app key, as its job carries them (``Job.end_user_daily_credits``)."""

    key_id: str
    end_user: str
    daily_credits: float


def end_user_of(job: Job) -> EndUserBudget | None:
    """The end user's daily credits a job's submission must stay within; None when its key sets none for it."""
    if job.key_id is None or job.end_user is None or job.end_user_daily_credits is None:
        return None
    return EndUserBudget(job.key_id, job.end_user, job.end_user_daily_credits)


def limits(svc: "Services", now: float, key: AppKey | None = None, account: Account | None = None,
           end_user: EndUserBudget | None = None) -> list[Limit]:
    """The credit limits a submission must stay within today: the service's ``BFL_DAILY_CREDIT_LIMIT``, its app
    key's ``daily_credits``, the BFL account's own ``BFL_<NAME>_DAILY_CREDIT_LIMIT`` (``account``: the one that
    sends it, known once it holds a slot) and its end user's daily credits with that key, each when set: an end
    user's allowance is one more limit of the same reservation, so a burst of its jobs passes it by one job's price
    at most, as a key's do."""
    day, service = accounting.utc_day(now), svc.config.bfl_daily_credit_limit
    found = []
    if service is not None:
        found.append(svc.store.usage.account_limit(day, accounting.SPENT, accounting.to_micro(service)))
    if key is not None and key.daily_credits is not None:
        found.append(svc.store.usage.key_limit(day, accounting.spent_field(key.id), key.id,
                                               accounting.to_micro(key.daily_credits)))
    if account is not None and account.daily_credit_limit is not None:
        found.append(svc.store.usage.bfl_account_limit(day, accounting.account_spent_field(account.name), account.name,
                                                       accounting.to_micro(account.daily_credit_limit)))
    if end_user is not None:
        found.append(svc.store.usage.end_user_limit(day, end_user.key_id, end_user.end_user,
                                                    accounting.to_micro(end_user.daily_credits)))
    return found


def reserve(svc: "Services", job_id: str, model: str, body: Mapping[str, Any] | Size,
            now: float | None = None, *, key: AppKey | None = None, account: Account | None = None,
            end_user: EndUserBudget | None = None) -> Reservation | None:
    """Admit the job's submission (``body``: its BFL request fields, or their size) against today's limits (the
    service's, its app key's ``key``, and the BFL ``account``'s that sends it), reserving the bound of its price
    in each (or all that is left, when it must go alone).

    None when no limit is set (nothing is reserved); else the store's answer: admitted, refused, or waiting.
    """
    return _ask(svc, job_id, model, body, now, ReserveMode.RESERVE, (key, account, end_user))


def look_again(svc: "Services", job_id: str, model: str, body: Mapping[str, Any] | Size,
               now: float | None = None, *, key: AppKey | None = None,
               end_user: EndUserBudget | None = None) -> Reservation | None:
    """What ``reserve`` would decide now for a job waiting aside, renewing its record of waiting (its turn to go
    alone) as ``reserve`` would while it must still wait, and reserving nothing when it may go: it reserves when
    it is sent. So a look never drops what a send of the same job under way holds."""
    return _ask(svc, job_id, model, body, now, ReserveMode.LOOK, (key, None, end_user))


def would_reserve(svc: "Services", job_id: str, model: str, body: Mapping[str, Any] | Size,
                  now: float | None = None, *, key: AppKey | None = None,
                  account: Account | None = None, end_user: EndUserBudget | None = None) -> Reservation | None:
    """What ``reserve`` would decide now, reserving nothing."""
    return _ask(svc, job_id, model, body, now, ReserveMode.DRY_RUN, (key, account, end_user))


def _ask(svc: "Services", job_id: str, model: str, body: Mapping[str, Any] | Size, now: float | None,
         mode: ReserveMode, payers: tuple[AppKey | None, Account | None, EndUserBudget | None]) -> Reservation | None:
    """The one ask behind ``reserve``, ``look_again`` and ``would_reserve``: the limits that apply, and the turn of
    the job's owner (its app key's, or the admin tokens', as for slots) among those that go alone."""
    now = time.time() if now is None else now
    key, account, end_user = payers
    found = limits(svc, now, key, account, end_user)
    if not found:
        return None
    return svc.store.usage.reserve(job_id, found, most(svc, model, body), now=now, lease=RESERVATION_LEASE,
                                   owner=owner_of(key.id if key is not None else None), mode=mode)


def most(svc: "Services", model: str, body: Mapping[str, Any] | Size) -> int | None:
    """The catalog's bound of the request's price in micro-credits; None (it goes alone) for a model the catalog
    cannot bound, one BFL has charged more than this very entry bounds, or one BFL has not priced within it yet.

    The last is what keeps every limit at most one job's price over whatever BFL states: BFL tells a price only
    in its answer, a second after the send, and a limit's concurrent sends would each pass their bound before
    the first answer showed it wrong. So a model's first request under an entry goes alone, and the others
    follow bounded once BFL has priced it within the entry."""
    entry = svc.config.catalog.get(model)
    if entry is None or entry.price is None or svc.store.prices.check(model, repr(entry.price)) != PriceCheck.WITHIN:
        return None
    return _catalog_bound(entry, body)


def _catalog_bound(entry: Model | None, body: Mapping[str, Any] | Size) -> int | None:
    """The catalog's bound of the request's price in micro-credits, whatever BFL has charged so far; None when the
    catalog cannot bound it."""
    if entry is None or entry.price is None:
        return None
    return bound(entry, body if isinstance(body, Size) else request_size(entry, body))


def standing(svc: "Services", now: float | None = None) -> Reservation | None:
    """Whether a new submission would be refused now (nothing left), with the day's spend and what others
    hold reserved: the reservation's own rule, reserving nothing. None when no limit is set."""
    now = time.time() if now is None else now
    applying = limits(svc, now)
    return svc.store.usage.reserve("", applying, 0, now=now, lease=RESERVATION_LEASE,
                                     mode=ReserveMode.DRY_RUN) if applying else None


def admission(svc: "Services", job_id: str, model: str, body: Mapping[str, Any], now: float | None = None,
              key: AppKey | None = None, end_user: EndUserBudget | None = None) -> None:
    """Whether a new job may be created: ``BudgetExceeded`` when the budget refuses it now, so that nothing is.
    It reserves nothing: its sender reserves when it sends it (``reserve``; the module's doc says why). A job of an
    end user with daily credits holds its bound against them from here until it settles (``end_user_admit``), or
    until ``give_back_admission`` when it is not made after all."""
    now = time.time() if now is None else now
    reservation = would_reserve(svc, job_id, model, body, now, key=key, end_user=end_user)
    if reservation is not None and not reservation.admitted and not reservation.waits:
        _refuse(svc, reservation, now, key, end_user)
    if end_user is not None:
        held = end_user_admit(svc, job_id, model, body, now, end_user)
        if not held.admitted:
            _refuse(svc, held, now, key, end_user)


def _refuse(svc: "Services", reservation: Reservation, now: float, key: AppKey | None,
            end_user: EndUserBudget | None) -> NoReturn:
    if reservation.decided_by == END_USER_LIMIT and key is not None:
        metrics.count(svc, "fluxhook_end_user_refusals", key=key.name, reason="budget_exceeded")
    raise refusal_error(svc, reservation, now, key, end_user)


def end_user_admit(svc: "Services", job_id: str, model: str, body: Mapping[str, Any], now: float,
                   end_user: EndUserBudget) -> Reservation:
    """A new job's admission against its end user's daily credits, counting what its jobs admitted and not yet
    settled may cost (their bounds), so that a burst of them sent at once is admitted as the same jobs sent one at a
    time would be (each while the spend is below the limit) and the rest refused at the door, never left to wait for
    the next day: admitted, it holds the catalog's bound of its price (nothing when the catalog cannot bound it: it
    goes alone when sent, as the module's doc says) until it settles or ends. One step in Redis over any number of
    processes."""
    limit = svc.store.usage.end_user_limit(accounting.utc_day(now), end_user.key_id, end_user.end_user,
                                           accounting.to_micro(end_user.daily_credits))
    return svc.store.usage.admit_end_user(job_id, limit, _catalog_bound(svc.config.catalog.get(model), body),
                                          key_id=end_user.key_id, end_user=end_user.end_user, now=now,
                                          lease=RESERVATION_LEASE)


def give_back_admission(svc: "Services", job_id: str, end_user: EndUserBudget | None) -> None:
    """A job ``admission`` admitted is not made after all: its hold on its end user's credits goes."""
    if end_user is not None:
        svc.store.usage.drop_end_user_hold(job_id, key_id=end_user.key_id, end_user=end_user.end_user)


def _by_key(reservation: Reservation, key: AppKey | None) -> bool:
    """Whether the app key's ``daily_credits`` decided a refusal or a wait, not the service's limit."""
    return key is not None and reservation.decided_by in (KEY_LIMIT, END_USER_LIMIT)


class Refusal(Enum):
    """What a submission the budget does not let go waits for."""

    # Its BFL account's own day is spent: the account rests until tomorrow, and another may send the job.
    ACCOUNT_SPENT = "account_spent"
    # The submissions under way to settle, within seconds: it must go alone while others' reservations are live,
    # or its BFL account's own limit is held by them.
    SETTLING = "settling"
    # The next UTC day: the service's ``BFL_DAILY_CREDIT_LIMIT`` or its app key's ``daily_credits`` are spent.
    SPENT = "spent"


def refusal_kind(reservation: Reservation, account: Account | None = None) -> Refusal:
    """What the refused ``reservation`` waits for; ``account``: the BFL account that sends it, whose own limit
    was asked (``reserve``), the one place that limit's refusals are told apart."""
    if not reservation.admitted and not reservation.waits and reservation.decided_by == BFL_ACCOUNT_LIMIT:
        spent = (account is not None and account.daily_credit_limit is not None
                 and reservation.spent >= accounting.to_micro(account.daily_credit_limit))
        return Refusal.ACCOUNT_SPENT if spent else Refusal.SETTLING
    return Refusal.SETTLING if reservation.waits else Refusal.SPENT


def settling_recheck(reservation: Reservation) -> float:
    """How soon a job the budget has waiting for submissions under way to settle is tried again: a boundable one
    at the next sweep, since it waits for one send alone at most; one waiting for its turn to go alone less often,
    as its turn comes after the others' prices are known."""
    return BOUNDED_RECHECK if reservation.waits and not reservation.alone else ALONE_RECHECK


def waiting_for(svc: "Services", reservation: Reservation, now: float, key: AppKey | None = None) -> Waiting:
    """Why a queued job the budget does not let go waits, and until when: the prices of the submissions under
    way to settle (``budget_settling``, unknown), or the next UTC day, for its end user's daily credits
    (``end_user_daily_credits``), its app key's ``daily_credits`` (``key_daily_credits``) or the account's
    ``BFL_DAILY_CREDIT_LIMIT`` (``daily_credits``)."""
    if refusal_kind(reservation) is Refusal.SETTLING:
        return Waiting(WaitReason.BUDGET_SETTLING)
    return Waiting(_spent_reason(reservation, key), now + seconds_until_next_day(now))


def _spent_reason(reservation: Reservation, key: AppKey | None) -> WaitReason:
    """Whose day is spent, of a job refused until the next day: its end user's, its app key's, or the service's."""
    if key is not None and reservation.decided_by == END_USER_LIMIT:
        return WaitReason.END_USER_DAILY_CREDITS
    return WaitReason.KEY_DAILY_CREDITS if _by_key(reservation, key) else WaitReason.DAILY_CREDITS


def refusal_error(svc: "Services", reservation: Reservation, now: float, key: AppKey | None = None,
                  end_user: EndUserBudget | None = None) -> BudgetExceeded:
    """The 402 of a refusal by whichever limit decided it (``refusal_of``'s message); an end user's with the seconds
    until its next UTC day."""
    message = refusal_of(svc, reservation, now, key, end_user)
    if end_user is not None and reservation.decided_by == END_USER_LIMIT:
        return EndUserBudgetExceeded(message, retry_after=seconds_until_next_day(now))
    return BudgetExceeded(message)


def refusal_of(svc: "Services", reservation: Reservation, now: float, key: AppKey | None = None,
               end_user: EndUserBudget | None = None) -> str:
    """The message of a refusal by whichever limit decided it: the account's, the app key's, or its end user's. An
    app key is told the figures of its own limits only: the service's spend and others' reservations are the
    operator's."""
    if end_user is not None and reservation.decided_by == END_USER_LIMIT:
        held = (f", {accounting.from_micro(reservation.reserved):g} more held by its jobs not yet sent or priced"
                if reservation.reserved else "")
        return (f"{named(end_user.end_user)} has spent its credits for today with this app key: "
                f"{accounting.from_micro(reservation.spent):g} of its daily_credits {end_user.daily_credits:g}{held} "
                f"(its end user limits); its new submissions are refused {_until_tomorrow(now)}")
    if key is None:
        limit = svc.config.bfl_daily_credit_limit
        assert limit is not None  # without a key's limit, only the service's refuses
        return refusal(reservation.spent, reservation.reserved, limit, now)
    if not _by_key(reservation, key):
        return (f"the service's credits for today are spent (its operator's BFL_DAILY_CREDIT_LIMIT); new "
                f"submissions are refused {_until_tomorrow(now)}")
    held = (f", {accounting.from_micro(reservation.reserved):g} more reserved by its submissions under way"
            if reservation.reserved else "")
    return (f"this app key's credits for today are spent: {accounting.from_micro(reservation.spent):g} of its "
            f"daily_credits {key.daily_credits:g}{held}; its new submissions are refused {_until_tomorrow(now)}")


def check_price(svc: "Services", model: str, body: Mapping[str, Any], cost: Cost | None) -> None:
    """BFL's stated price for this request against the catalog's bound: one within it lets the model's requests be
    bounded by the entry (``most``); one above it is logged with both figures and counted
    (``fluxhook_price_over_catalog_total``), and the model's requests go alone from then on, until its catalog
    entry is corrected."""
    entry = svc.config.catalog.get(model)
    if cost is None or cost.credits is None or entry is None or entry.price is None:
        return
    most = bound(entry, request_size(entry, body))
    charged = accounting.to_micro(cost.credits)
    if most is None:
        return
    if charged <= most:
        svc.store.prices.mark_within(model, repr(entry.price))
        return
    svc.store.prices.mark_over(model, repr(entry.price))
    metrics.count(svc, "fluxhook_price_over_catalog", model=model)
    log.warning("BFL charged more than the model catalog bounds: its requests go alone until the catalog is "
                "corrected (BFL_MODELS_FILE)", extra={"model": model, "charged": cost.credits,
                                                     "catalog_bound": accounting.from_micro(most)})


# --- The bound: the most a request may cost, from the catalog (pure) ---

# A draft video may be asked in a batch of up to this many.
MAX_BATCH = 4
_WHOLE = re.compile(r"^\s*[+-]?\d+\s*$")


class Size(NamedTuple):
    """What a request asks for, as BFL will read it (at most what the model makes)."""

    output_mp: float  # megapixels made, at least one
    input_images: int  # input images BFL reads
    seconds: int = 0  # a video's length, times its batch
    rate: float | None = None  # the price rule's rate the request's fields select; None: the rule's highest

    def encode(self) -> str:
        """As a job's record keeps it while its input waits in storage."""
        rate = "" if self.rate is None else f",{self.rate!r}"
        return f"{self.output_mp!r},{self.input_images},{self.seconds}{rate}"

    @classmethod
    def decode(cls, text: str | None) -> "Size | None":
        """A size as ``encode`` wrote it; None for anything else."""
        parts = (text or "").split(",")
        if len(parts) not in (3, 4) or not all(p.isascii() and p.isdigit() and len(p) < 12 for p in parts[1:3]):
            return None
        try:
            output, rate = float(parts[0]), float(parts[3]) if len(parts) == 4 else None
        except ValueError:
            return None
        if not math.isfinite(output) or output < 0 or (rate is not None and (not math.isfinite(rate) or rate < 0)):
            return None
        return cls(output, int(parts[1]), int(parts[2]), rate)


def whole_number(value: Any) -> int | None:
    """``value`` as BFL's schema reads a whole number (an int, a float with no fraction, a string of digits);
    None when it would not read one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str) and _WHOLE.fullmatch(value) and len(value) < 20:
        return int(value)
    return None


def _output_mp(model: Model, body: Mapping[str, Any]) -> float:
    width, height = body.get("width"), body.get("height")
    if width is None and height is None and not any(body.get(name) for name in model.input_fields):
        return model.default_mp
    w, h = whole_number(width), whole_number(height)
    if w is None or h is None or w <= 0 or h <= 0:
        return model.max_output_mp  # unread, or sized from an input image: at the most the model makes
    return min(model.max_output_mp, w * h / MEGAPIXEL)


def _inputs(model: Model, body: Mapping[str, Any]) -> int:
    """The input images BFL reads: one per field given, each item of a list field (FLUX 3 Image's ``images``)."""
    count = 0
    for name in model.input_fields:
        value = body.get(name)
        count += len(value) if isinstance(value, list) else (1 if value else 0)
    return count


def request_size(model: Model, body: Mapping[str, Any]) -> Size:
    """The size of a submission ``body`` (BFL's request fields) for ``model``, as BFL will read it."""
    inputs = _inputs(model, body)
    seconds = 0
    if model.kind == "video":
        keyframes = body.get("keyframes")
        inputs = min(len(keyframes), model.input_images) if isinstance(keyframes, list) else 0
        asked = body.get("duration")
        duration = whole_number(asked) if asked is not None else model.default_seconds
        most = model.max_seconds or 0
        duration = most if duration is None or duration <= 0 else min(duration, most or duration)
        batch = whole_number(body.get("batch", 1))
        batch = MAX_BATCH if batch is None or batch < 1 else min(batch, MAX_BATCH)
        seconds = duration * batch
    rate = model.price.rate(body) if model.price is not None and model.price.rule != "megapixel" else None
    return Size(max(1.0, _output_mp(model, body)), inputs, seconds, rate)


def capped(model: Model | None, body: Mapping[str, Any]) -> dict:
    """The request as it is sent: a video's ``duration`` and ``batch`` no larger than the catalog's most, which its
    bound counts (``request_size``), so that BFL never charges it for more than it was allowed to reserve."""
    sent = dict(body)
    if model is None or model.kind != "video":
        return sent
    duration = whole_number(sent.get("duration")) if "duration" in sent else None
    if model.max_seconds and duration is not None and duration > model.max_seconds:
        sent["duration"] = model.max_seconds
    batch = whole_number(sent.get("batch")) if "batch" in sent else None
    if batch is not None and batch > MAX_BATCH:
        sent["batch"] = MAX_BATCH
    return sent


def bound(model: Model | None, size: Size) -> int | None:
    """The most a request of ``size`` may cost, in micro-credits (whole credits, rounded up, so that BFL's own
    rounding of its price never passes it); None when the catalog cannot bound it."""
    if model is None or model.price is None:
        return None
    price = model.price
    rate = price.highest if size.rate is None else min(size.rate, price.highest)
    if price.rule == "image":
        credits = rate
    elif price.rule == "second":
        # Per megapixel-second (video upscaling): every frame at the most the model makes, as the output's size
        # follows an input BFL alone reads.
        credits = rate * size.seconds * (model.max_output_mp if price.per_megapixel else 1)
    else:
        # BFL states megapixels to two decimals: a request is charged for at most its own, rounded up.
        made = math.ceil(size.output_mp * 100 - 1e-9) / 100
        read = size.input_images * model.max_input_mp
        credits = price.first + (made - 1) * price.each + read * price.each
    return math.ceil(credits - 1e-9) * accounting.MICRO
