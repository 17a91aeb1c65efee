"""Every request of an app key counts against its read limit, here and nowhere else: cheap or not (a job, an image, a
variant, a video, a stream's start, a delivery list, its own usage), a flood of them costs that key alone. A key past
its ``reads_per_minute`` (else READS_PER_MINUTE) is answered ``429 rate_limited`` with ``Retry-After`` before any view
runs; once refused, its reads are refused from the process's memory, with no Redis step, until its bucket could admit
one (``AppKeys.take_read``), and its GETs from the permits' memory before they take a work permit (``refusals``).

Not counted: submissions and tracks (``requests_per_minute`` counts them, so a key is not charged twice for one
request), admin tokens, requests with no valid key (their 401 comes from the view), and anything outside ``/v1``
(BFL's callbacks above all). A job's file opened by its signed link, with no key presented, counts against its job's
key where the job is known (``media.authorized_job``).
"""

from __future__ import annotations

import time
from typing import Mapping

from flask import Flask, request

from fluxhook.core.errors import InvalidRequest
from fluxhook.core.job_filters import parse_limit
from fluxhook.lifecycle.steps import key_limits

from .auth import API_PREFIX, authenticate
from .context import services

# The views that make jobs or batches: counted by ``requests_per_minute`` instead.
SUBMISSIONS = frozenset({"jobs.create", "jobs.track", "batches.create", "bfl_compat.submit"})
# Reads that cost more than one unit: a page of a list by the jobs or batches it asks for, a batch's whole results.
_PAGES = frozenset({"jobs.index", "batches.index"})
_WHOLE_BATCH = "batches.results"


def read_cost(path: str, endpoint: str | None, args: Mapping[str, str]) -> int:
    """The units a request of an app key counts against its read limit: 0 when it is not a read (outside ``/v1``, or
    a submission), a list page's by the ``limit`` it asks for, the largest read for a batch's results, else one. A
    malformed request counts one: it too made the web work."""
    if not path.startswith(API_PREFIX) or endpoint in SUBMISSIONS:
        return 0
    if endpoint in _PAGES:
        try:
            return key_limits.read_cost(parse_limit(args.get("limit")))
        except InvalidRequest:
            return 1
    if endpoint == _WHOLE_BATCH:
        return key_limits.LARGEST_READ
    return 1


def init_app(app: Flask) -> None:
    """Count each request of an app key before any view runs."""

    @app.before_request
    def count_read():
        cost = read_cost(request.path, request.endpoint, request.args)
        if cost == 0:
            return
        caller = authenticate()
        if caller is None or caller.admin:
            return
        svc = services()
        key_limits.take_read(svc.store.app_keys, svc.config, caller, cost, time.time())
