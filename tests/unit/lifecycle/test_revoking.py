"""Revoking an app key (fluxhook/lifecycle/revoking.py) in-process: its queued jobs end ``failed`` / ``key_revoked``,
and one being sent to BFL is left to finish. A job of a revoked key is never sent:
tests/unit/lifecycle/steps/test_submission.py. Over HTTP with several web processes: tests/e2e/api/test_key_limits.py."""

from __future__ import annotations

import time

from fluxhook.core import transitions as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.pools import pool_for
from fluxhook.lifecycle import revoking
from fluxhook.store.app_keys import AppKey
from fluxhook.store.keys import KEYS

DB = 12


def _queued_job(svc, key_id: str) -> Job:
    now = time.time()
    job = Job(id=new_job_id(now), status=st.QUEUED, model="flux-2-pro", input={"prompt": "x"},
              pool=pool_for("flux-2-pro", svc.config.bfl_model_limits), created_at=now, updated_at=now, key_id=key_id)
    svc.jobs.create(job)
    return job


def test_a_queued_job_being_sent_to_bfl_is_left_to_finish(make_services):
    svc = make_services(DB)
    svc.store.app_keys.create(AppKey(id="key_00000000000000aa", name="k", prefix="fhk_0000", secret_sha256="x"))
    sending, waiting = _queued_job(svc, "key_00000000000000aa"), _queued_job(svc, "key_00000000000000aa")
    assert svc.store.locks.acquire(KEYS.submit_lock(sending.id), "1", 60)

    assert revoking.revoke(svc, "key_00000000000000aa")

    assert svc.jobs.get(sending.id).status == st.QUEUED
    assert svc.jobs.get(waiting.id).status == st.FAILED
    assert svc.jobs.get(waiting.id).error["code"] == "key_revoked"
    assert not revoking.revoke(svc, "key_00000000000000bb")
