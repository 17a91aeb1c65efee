"""Someone watches a job (an open stream, a ``Prefer: wait``, the drop-in's ``get_result``, its dashboard page): for
the next few seconds, what BFL reports of its task reaches the record within ``live.WATCHED_WITHIN`` (docs/api.md
"Live"), where any other running job's takes up to ``live.UNWATCHED_WITHIN``. Only what is watched is polled that
often: BFL's polls are requests on the account's key, shared by every tenant."""

from __future__ import annotations

import time

from fluxhook.core.job import is_job_id
from fluxhook.core.live import WATCH_SECONDS
from fluxhook.services import Services


def watch(svc: Services, job_id: str, seconds: float = WATCH_SECONDS) -> None:
    """Someone watches the job now, and for ``seconds``: a running job is polled within about a second (the sweep's
    next round), then at the watched pace until no one has looked for ``seconds``. One Redis command; idempotent, and
    cheap enough for every look of every open stream. A job that has ended, or none, is left as it is."""
    if is_job_id(job_id):
        svc.store.watching.watch(job_id, seconds, time.time())
