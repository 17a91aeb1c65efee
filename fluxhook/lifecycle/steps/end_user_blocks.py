"""A block stops its end user's jobs not yet sent to BFL (docs/end-users.md, "Blocking"): each still ``queued`` ends
``canceled`` with the error ``end_user_blocked`` (never sent, nothing charged, its place in line and any reservation
freed, its batch's counts and its notification as for any cancel), while a job BFL already has goes on (it is paid
for whatever happens) and the key's other end users' jobs are untouched.

Two ways, so that none is missed: the block ends the end user's jobs waiting in line or aside at once (an admin's
block in its request, a moderation block in the step that counted the moderation that reached the limit), up to
``ENDS_AT_ONCE``; and every sender looks at the job's end user under the job's submit lock before it sends
(``submission``), which ends any other (one that held a slot meanwhile, one made since, those past
``ENDS_AT_ONCE``) as its turn comes.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from fluxhook.core import job as st
from fluxhook.core.end_users import BLOCKED_ENDINGS, BlockReason
from fluxhook.core.job import Ending, Job
from fluxhook.credits import accounting
from fluxhook.lifecycle.steps import ending
from fluxhook.lifecycle.steps.end_user_limits import blocked_why
from fluxhook.store.app_keys import AppKey

if TYPE_CHECKING:
    from fluxhook.services import Services

log = logging.getLogger("fluxhook.end_users")

# Most jobs a block ends in the step that blocks (a request, or the step that counted a moderation): a few Redis round
# trips each. Those past it end as their turn to be sent comes.
ENDS_AT_ONCE = 500


def ending_if_blocked(svc: "Services", key: AppKey | None, job: Job, now: float) -> Ending | None:
    """How ``job`` (``queued``, of ``key``) ends instead of being sent when its end user is blocked today; None when
    it is not, or when its key blocks none (nothing set by hand, no moderation limit: no Redis step)."""
    if key is None or job.end_user is None or not (key.end_user_records or key.end_user_moderation_limit):
        return None
    day = accounting.utc_day(now)
    [(record, moderated)] = svc.store.end_users.standing(key.id, [job.end_user], day)
    why = blocked_why(key, record, moderated, day)
    return None if why is None else BLOCKED_ENDINGS[why]


def end_waiting(svc: "Services", key_id: str, end_user: str, why: BlockReason) -> int:
    """End the blocked ``end_user``'s jobs of key ``key_id`` waiting in line or aside (up to ``ENDS_AT_ONCE``), each
    under its submit lock: one a sender is sending goes on as the send decides. How many ended."""
    blocked = BLOCKED_ENDINGS[why]
    ids = svc.slots.end_user_waiting(key_id, end_user)[:ENDS_AT_ONCE]
    ended = 0
    for job in svc.jobs.get_many(ids):
        if job is None or job.key_id != key_id or job.end_user != end_user:
            continue  # gone, or another's whose member's tag is alike
        outcome = ending.end(svc, job.id, lambda status: blocked if status == st.QUEUED else None, wait=0)
        ended += outcome == ending.Ended.ENDED
    if ended:
        log.info("blocked end user's queued jobs ended", extra={"key_id": key_id, "ended": ended,
                                                              "reason": why.value})
    return ended


def after_moderated(svc: "Services", job: Job) -> None:
    """``job`` (of an end user) just ended ``moderated``: if that took its end user to its key's moderation limit,
    its jobs waiting end now (``end_waiting``)."""
    if job.end_user is None or job.key_id is None:
        return
    key = svc.store.app_keys.get(job.key_id)
    if key is None or not key.end_user_moderation_limit:
        return
    day = accounting.utc_day(time.time())
    [(record, moderated)] = svc.store.end_users.standing(key.id, [job.end_user], day)
    if blocked_why(key, record, moderated, day) is BlockReason.MODERATED:
        end_waiting(svc, key.id, job.end_user, BlockReason.MODERATED)
