"""End users: an app's own users, named on each request, with limits its key sets for each of them.

An end user is an opaque string the app chooses (an account id, a hash of an email): fluxhook never sends it to BFL,
keeps it on the job, and counts and limits by it within its key only, so two keys' end users of the same name are
two people.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from enum import Enum
from typing import Any

from fluxhook.core import job as st
from fluxhook.core.errors import EndUserBlocked, InvalidRequest
from fluxhook.core.job import Ending

MAX_END_USER = 128
# The request header that names the end user for clients that cannot change BFL's body (its drop-in routes).
HEADER = "X-End-User"
# The body field that names it.
FIELD = "end_user"
# The limits a key sets for each of its end users: the key's own limit fields of the same names.
LIMIT_FIELDS = ("requests_per_minute", "max_active", "max_queued", "daily_credits")


class BlockReason(str, Enum):
    """Why an end user is blocked for the rest of its UTC day."""

    MODERATED = "moderated"  # BFL moderated its jobs as many times today as its key's end_user_moderation_limit
    MANUAL = "manual"  # an admin blocked it (POST /v1/keys/{id}/end_users/{end_user}/block)


# How a job of a blocked end user that was not yet sent to BFL ends, by why it was blocked: canceled, as a caller's
# cancel ends a queued job (never sent, nothing charged), with the code a new request of it is refused with.
BLOCKED_ENDINGS = {
    BlockReason.MANUAL: Ending(st.CANCELED, EndUserBlocked.code, "its end user was blocked by an admin of its app key "
                                                                  "before it was sent to BFL; nothing was charged"),
    BlockReason.MODERATED: Ending(st.CANCELED, EndUserBlocked.code, "its end user was blocked for today, BFL having "
                                                                     "moderated as many of its jobs as its app key's "
                                                                     "end_user_moderation_limit, before it was sent to "
                                                                     "BFL; nothing was charged"),
}


def parse_end_user(value: Any, where: str = FIELD) -> str | None:
    """The end user a request names (``where``: the field or header it came in), None when it names none; a 400
    saying what to send for anything but a string of 1 to ``MAX_END_USER`` printable characters."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_END_USER or not value.isprintable():
        raise InvalidRequest(f"'{where}' must be a string of 1 to {MAX_END_USER} printable characters naming the "
                             f"app's own user (an opaque id: it is never sent to BFL)")
    return value


def named(end_user: str) -> str:
    """The end user as an answer names it."""
    return f"end user {end_user!r}"


@dataclass(frozen=True)
class EndUserLimits:
    """What each end user of a key may do; None: that limit is not set (the key's own still holds)."""

    requests_per_minute: int | None = None
    max_active: int | None = None
    max_queued: int | None = None
    daily_credits: float | None = None

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))

    def to_api(self) -> dict[str, Any]:
        return asdict(self)

    def encode(self) -> str:
        """As a record keeps it: the set limits as JSON."""
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str | bytes | None) -> EndUserLimits:
        if not raw:
            return cls()
        values = json.loads(raw)
        return cls(**{k: values[k] for k in LIMIT_FIELDS if values.get(k) is not None})

    def over(self, override: EndUserLimits) -> EndUserLimits:
        """These defaults with ``override``'s set limits in their place."""
        return replace(self, **{k: v for k, v in asdict(override).items() if v is not None})
