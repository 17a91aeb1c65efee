"""What a job list (``GET /v1/jobs``, the dashboard's) may be filtered by, and the rule of each filter.

The store answers a ``JobFilter`` (``fluxhook.store.jobs``): ``status``, ``model``, ``key_id`` and ``batch_id`` from their
indexes, ``since``/``until`` as bounds of the ids (ids sort by creation time), ``account``, ``end_user`` and ``text`` by reading
the records themselves, ``text`` only among the newest ``TEXT_WINDOW`` jobs of the list's scope.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from fluxhook.core import job as st
from fluxhook.core.accounts import ACCOUNT_NAME
from fluxhook.core.batch import is_batch_id
from fluxhook.core.end_users import parse_end_user
from fluxhook.core.errors import InvalidRequest
from fluxhook.core.json_body import decimal, refuse_unknown
from fluxhook.core.models import MODEL

# The query parameters of GET /v1/jobs, and nothing else.
LIST_PARAMETERS = ("status", "model", "key_id", "batch_id", "account", "end_user", "q", "from", "to", "limit", "cursor")
# What a caller likely meant by a parameter the list does not take.
LIST_HINTS = {
    "prompt": "to find jobs by their prompt, use q", "search": "to find jobs by their prompt, use q",
    "text": "to find jobs by their prompt, use q", "since": "use from", "after": "use from", "until": "use to",
    "before": "use to", "page_size": "use limit", "per_page": "use limit", "key": "use key_id",
}
# ``text`` looks at the newest this many jobs of the list's scope (an app key's own, one key's, or every job):
# a search costs the same however many jobs are kept.
TEXT_WINDOW = 10_000
MAX_TEXT_CHARS = 200
DEFAULT_LIMIT = 20
MAX_LIMIT = 100

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})?$")
TIME_FORMS = "a date (2026-11-21) or a time (2026-11-21T10:00:00Z, 2026-11-21T10:00, 2026-11-21T11:00:00+01:00)"


@dataclass(frozen=True)
class JobFilter:
    """Which jobs a list holds; None is any. Checked as it is made, so a store never sees a bad one."""

    status: str | None = None
    model: str | None = None
    # The app key that created the job (its shape is checked where callers are: ``lifecycle.steps.callers``).
    key_id: str | None = None
    # The batch it is an item of (``core/batch.py``).
    batch_id: str | None = None
    # The BFL account that ran it.
    account: str | None = None
    # The end user it was made for (``core.end_users``): no index, read from the records as ``account`` is, so naming
    # an end user costs a job's creation nothing.
    end_user: str | None = None
    # Its prompt holds this, in any case (``prompt_holds``).
    text: str | None = None
    # Made at or after ``since``, and before ``until`` (epoch seconds).
    since: float | None = None
    until: float | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in st.STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(st.STATUSES)}")
        if self.model is not None and not MODEL.fullmatch(self.model):
            raise InvalidRequest("model must be a BFL model name such as flux-2-pro")
        if self.batch_id is not None and not is_batch_id(self.batch_id):
            raise InvalidRequest("'batch_id' must be a batch's id such as bat_01JD5Q... (GET /v1/batches lists them)")
        if self.account is not None and not ACCOUNT_NAME.fullmatch(self.account):
            raise InvalidRequest("'account' must be the name of a BFL account (GET /v1/accounts lists them)")
        if self.end_user is not None:
            parse_end_user(self.end_user, "end_user")
        if self.text is not None and not 1 <= len(self.text) <= MAX_TEXT_CHARS:
            raise InvalidRequest(f"'q' must be 1 to {MAX_TEXT_CHARS} characters")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise InvalidRequest("'from' must be earlier than 'to'")

    @property
    def reads_records(self) -> bool:
        """Whether a job's record must be read to know if it is in (no index answers ``account``, ``end_user`` or ``text``)."""
        return self.account is not None or self.end_user is not None or self.text is not None


EVERY_JOB = JobFilter()


@dataclass(frozen=True)
class Listing:
    """One page asked of a job list: which jobs, how many, after which cursor."""

    filter: JobFilter
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


def parse_listing(pairs: Iterable[tuple[str, str]]) -> Listing:
    """A job list's query parameters (name, value pairs as sent, repeats included) as a ``Listing``.

    An undefined parameter is ``UnknownField``; a repeated one, a bad value, ``InvalidRequest``. An empty value
    is no filter, as if left out.
    """
    values: dict[str, str] = {}
    for name, value in pairs:
        refuse_unknown([name], LIST_PARAMETERS, where="GET /v1/jobs", kind="query parameter", hints=LIST_HINTS)
        if name in values:
            raise InvalidRequest(f"give '{name}' once")
        values[name] = value
    given = {name: value for name, value in values.items() if value != ""}
    return Listing(
        JobFilter(status=given.get("status"), model=given.get("model"), key_id=given.get("key_id"),
                  batch_id=given.get("batch_id"), account=given.get("account"), end_user=given.get("end_user"),
                  text=given.get("q"),
                  since=parse_time("from", given["from"]) if "from" in given else None,
                  until=parse_time("to", given["to"]) if "to" in given else None),
        limit=parse_limit(given.get("limit")), cursor=given.get("cursor"))


def parse_limit(text: str | None) -> int:
    """``limit`` as a number from 1 to ``MAX_LIMIT`` (``DEFAULT_LIMIT`` when not given)."""
    if text is None:
        return DEFAULT_LIMIT
    limit = decimal(text, MAX_LIMIT)
    if limit is None or limit < 1:
        raise InvalidRequest(f"'limit' is {text[:40]!r}: it must be a whole number from 1 to {MAX_LIMIT}")
    return limit


def parse_time(name: str, text: str) -> float:
    """``from`` or ``to`` (``name``) as epoch seconds: a time as it says (UTC when it names no offset), a date as
    its whole UTC day: ``from`` its first instant, ``to`` the next day's (``to`` is the first instant left out)."""
    if _DAY.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InvalidRequest(f"'{name}' is not a real date: {text[:40]!r}") from None
        if name == "to":
            day += timedelta(days=1)
        return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()
    if _TIME.fullmatch(text):
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidRequest(f"'{name}' is not a real time: {text[:40]!r}") from None
        return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()
    if re.fullmatch(r".*T\d{2}:\d{2}(:\d{2}(\.\d+)?)? \d{2}:\d{2}", text):
        raise InvalidRequest(f"'{name}': a '+' in a URL reads as a space; send the offset as %2B01:00, or the time in Z")
    raise InvalidRequest(f"'{name}' must be {TIME_FORMS}, not {text[:40]!r}")


def prompt_holds(prompt: str | None, text: str) -> bool:
    """Whether a job's ``prompt`` holds ``text`` in any case (Unicode case folding: 'STRASSE' holds 'straße')."""
    return prompt is not None and text.casefold() in prompt.casefold()
