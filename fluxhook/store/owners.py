"""Whose a job is, for the fair share of BFL's slots: an app key's id, or one owner for every admin token.

An owner id is a word of letters, digits, ``_`` and ``-``: it is the prefix of its jobs' members in a
slot line (``<owner>:<job id>``), so it may hold neither ``:`` nor anything that sorts between ``:`` and ``;``.
"""

from __future__ import annotations

import hashlib
import math
import re

# The owner of every job made with an admin token (API_TOKENS): together they count as one key.
ADMIN_OWNER = "admin"
# An owner's weight when none is set: its share of the slots against the other owners with work waiting.
DEFAULT_WEIGHT = 1
# The field of a scheduler's passes (``Keys.fair_passes``, ``Keys.work_passes``) that holds its clock, not an owner's
# pass: no owner id holds a '~' (``lua/fair_turns.lua`` names it too), and the budget's turns name their
# own fields so (``Keys.budget_turns``).
CLOCK = "~clock"
# What marks a batch item's member (``member``): '~' sorts after every job id, so its owner's single jobs go first.
BULK = "~"
# What marks an end user's job (``member``): '!' and its end user's tag, then ':', after its form's '~'. '!' sorts before
# every rank, job id and '~', so each end user's members are one lexical range at the head of its form's part of its
# owner's range, before those of no end user (``lua/members.lua`` says why).
END_USER = "!"
TAG_CHARS = 16
_OWNER = re.compile(r"[A-Za-z0-9_-]{1,64}")


def owner_of(key_id: str | None) -> str:
    """The owner of a job made with app key ``key_id`` (None: with an admin token)."""
    owner = key_id or ADMIN_OWNER
    if not _OWNER.fullmatch(owner):
        raise ValueError(f"not an owner id: {owner!r}")
    return owner


def rank(deadline: float | None) -> str:
    """What orders a job by its deadline (``Cancel-After``) among its owner's jobs of its form: the deadline's second in
    ten digits and a '.', which sorts before every job id; '' for a job without one, which then sorts after them."""
    return "" if deadline is None else f"{math.floor(deadline):010d}."


def tag(end_user: str | None) -> str:
    """The tag of an app's end user in a line's member: a digest, so it holds neither ':' nor ';' whatever the end
    user's text ('' for none)."""
    return hashlib.sha1(end_user.encode()).hexdigest()[:TAG_CHARS] if end_user else ""


def _marked(end_user: str | None) -> str:
    return f"{END_USER}{tag(end_user)}:" if end_user else ""


def member(owner: str, job_id: str, *, bulk: bool = False, deadline: float | None = None,
           end_user: str | None = None) -> str:
    """A job's member in a line (the slots', the work lines', the check line): ``<owner>:<job id>``, ranked by its
    ``deadline`` (``rank``), marked with its ``end_user``'s tag before that, a batch item's (``bulk``) marked with '~'
    before both, after each of its owner's single jobs (``lua/members.lua`` is the scripts' side of it)."""
    return f"{owner}:{BULK if bulk else ''}{_marked(end_user)}{rank(deadline)}{job_id}"


def forms(owner: str, job_id: str, deadline: float | None, end_user: str | None = None) -> list[str]:
    """Every form the job's member may have in a line: single or bulk, ranked by ``deadline`` and, for a job with one,
    unranked as an older release added it (``lua/members.lua``'s ``forms``)."""
    ranks, mark = dict.fromkeys([rank(deadline), ""]), _marked(end_user)
    return [f"{owner}:{bulk}{mark}{r}{job_id}" for r in ranks for bulk in ("", BULK)]


def estimate_field(slots_key: str, owner: str) -> str:
    """The field of ``Keys.fair_passes`` that holds ``owner``'s estimate of slot time in the pool whose slots are
    ``slots_key`` (``lua/slot_time.lua``'s ``estimate_field`` is the scripts' side of it): its '~' makes it no owner's
    pass."""
    return f"~{slots_key}|{owner}"


def end_user_ranges(owner: str, end_user: str) -> list[tuple[str, str]]:
    """The ZRANGEBYLEX bounds of ``owner``'s members of ``end_user``: its single jobs' range, then its batch items'
    (each form's members of one end user are one lexical range, as its mark ends with ':')."""
    mark = _marked(end_user)
    return [(f"[{owner}:{bulk}{mark}", f"({owner}:{bulk}{mark[:-1]};") for bulk in ("", BULK)]


def owner_range(owner: str) -> tuple[str, str]:
    """The ZRANGEBYLEX bounds of ``owner``'s members: one lexical range, as an owner id holds no ':'."""
    return f"[{owner}:", f"({owner};"


def member_job(item: str) -> str:
    """The job id of a line's member."""
    job = item.partition(":")[2].removeprefix(BULK)
    return _RANKED.sub("", _END_USER.sub("", job, count=1), count=1)


_RANKED = re.compile(r"^[0-9]{10}\.")
_END_USER = re.compile(r"^![0-9a-f]+:")
