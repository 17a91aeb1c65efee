"""Each key's notification secret (fluxhook/lifecycle/steps/notify_secrets.py) on a real Redis (database 11): made
with the key and sealed, a day of two secrets after a rotation, one made on first need for a key of an older release;
and the one rule for ``notify_events`` (fluxhook/core/notify_rules.py)."""

from __future__ import annotations

import time

import pytest

from fluxhook.core.errors import InvalidRequest
from fluxhook.core.notify_rules import parse_events, wanted
from fluxhook.lifecycle import key_admin
from fluxhook.lifecycle.steps import notify_secrets
from notify_helpers import SECRET


@pytest.fixture()
def svc(make_services):
    return make_services(11, NOTIFY_SECRET=SECRET)


def test_a_key_signs_with_its_own_sealed_secret_and_an_admin_job_with_notify_secret(svc):
    key, _ = key_admin.create_key(svc, {"name": "a"}, time.time())
    other, _ = key_admin.create_key(svc, {"name": "b"}, time.time())
    mine = notify_secrets.current(svc, key)
    assert mine.startswith("whsec_") and mine != notify_secrets.current(svc, other)
    assert mine not in str(svc.redis.hgetall(svc.store.keys.app_key(key.id)))  # sealed, never in the clear
    assert notify_secrets.signing_secrets(svc, key.id, time.time()) == [mine]
    assert notify_secrets.signing_secrets(svc, None, time.time()) == [SECRET]
    assert notify_secrets.signing_secrets(svc, "key_0000000000000000", time.time()) == []


def test_a_rotation_signs_with_both_for_a_day_then_the_new_one_only(svc):
    now = time.time()
    key, _ = key_admin.create_key(svc, {"name": "rotating"}, now)
    old = notify_secrets.current(svc, key)
    rotated, new = key_admin.rotate_notify_secret(svc, key.id, now)
    assert new != old and notify_secrets.current(svc, rotated) == new
    assert notify_secrets.signing_secrets(svc, key.id, now + 1) == [new, old]
    assert notify_secrets.signing_secrets(svc, key.id, now + notify_secrets.OVERLAP - 1) == [new, old]
    assert notify_secrets.signing_secrets(svc, key.id, now + notify_secrets.OVERLAP) == [new]


def test_a_key_made_before_secrets_gets_one_on_first_need_and_keeps_it(svc):
    key, _ = key_admin.create_key(svc, {"name": "older"}, time.time())
    svc.redis.hdel(svc.store.keys.app_key(key.id), "notify_secret")
    first = notify_secrets.signing_secrets(svc, key.id, time.time())
    assert len(first) == 1 and first[0].startswith("whsec_")
    assert notify_secrets.signing_secrets(svc, key.id, time.time()) == first


def test_notify_events_name_only_known_events_and_a_job_s_own_list_wins():
    assert parse_events(["job.progress", "job.ended", "job.submitted"]) == ("job.submitted", "job.progress")
    assert parse_events([]) == ()
    for bad in ("job.submitted", ["job.exploded"], [1], None):
        with pytest.raises(InvalidRequest, match="notify_events"):
            parse_events(bad)
    assert wanted(("job.progress",), ("job.submitted",)) == ("job.progress",)
    assert wanted((), ("job.submitted",)) == ()
    assert wanted(None, ("job.submitted",)) == ("job.submitted",)
    assert wanted(None, None) == ()
