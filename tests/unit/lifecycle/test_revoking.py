"""Revoking an app key (fluxhook/lifecycle/revoking.py) in-process: its queued jobs end ``failed`` / ``key_revoked``,
and one being sent to BFL is left to finish. A job of a revoked key is never sent:
tests/unit/lifecycle/steps/test_submission.py. Over HTTP with several web processes: tests/e2e/api/test_key_limits.py."""

from __future__ import annotations

from fluxhook.core import job as st
from fluxhook.lifecycle import revoking
from fluxhook.store.app_keys import AppKey
from fluxhook.store.keys import KEYS
from slot_helpers import _queued

DB = 12


def test_a_queued_job_being_sent_to_bfl_is_left_to_finish(make_services):
    svc = make_services(DB)
    svc.store.app_keys.create(AppKey(id="key_00000000000000aa", name="k", prefix="fhk_0000", secret_sha256="x"))
    sending, waiting = _queued(svc.jobs, key_id="key_00000000000000aa"), _queued(svc.jobs, key_id="key_00000000000000aa")
    assert svc.store.locks.acquire(KEYS.submit_lock(sending.id), "1", 60)

    assert revoking.revoke(svc, "key_00000000000000aa")

    assert svc.jobs.get(sending.id).status == st.QUEUED
    assert svc.jobs.get(waiting.id).status == st.FAILED
    assert svc.jobs.get(waiting.id).error["code"] == "key_revoked"
    assert not revoking.revoke(svc, "key_00000000000000bb")
