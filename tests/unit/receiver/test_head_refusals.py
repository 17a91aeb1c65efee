"""A request refused from its head, before its body is received (receiver/head_refusals.py): each refusal an app key's
state makes certain, in the API's shape (BFL's on its drop-in routes), at most one Redis round trip, on real Redis."""

from __future__ import annotations

import json
import time

import pytest

from conftest import API_TOKEN
from fluxhook.credits import accounting
from fluxhook.lifecycle.steps.callers import KeyResolver
from fluxhook.lifecycle.steps.head_limits import Asks
from fluxhook.lifecycle.steps.key_fields import new_key
from receiver.batch_room import PLACES_PER_KEY, DividedRoom
from receiver.bulkheads import BATCH_MAKING_ROOM
from receiver.head_refusals import JUDGED_FROM_BYTES, Judge, asked, refusal_before_body

DB = 10


@pytest.fixture()
def svc(make_services):
    return make_services(DB)


class Counted:
    """The services' Redis connection, counting the commands and scripts sent on it (a pipeline's as one)."""

    def __init__(self, connection):
        self.trips = 0
        self._execute = connection.execute_command

        def counted(*args, **kwargs):
            self.trips += 1
            return self._execute(*args, **kwargs)

        connection.execute_command = counted


def _key(svc, **limits):
    key, secret = new_key({"name": f"app-{len(limits)}-{time.monotonic_ns()}", **limits}, now=time.time())
    svc.store.app_keys.create(key)
    return key, secret


def _judge(svc, room=None):
    room = room or DividedRoom(BATCH_MAKING_ROOM, PLACES_PER_KEY)
    return Judge(svc, KeyResolver(svc.store.app_keys), lambda: room)


def _refusal(judge, secret, path="/v1/jobs", **headers):
    sent = {"authorization": f"Bearer {secret}", "content-length": str(50 * 2**20),
            **{name.lower().replace("_", "-"): value for name, value in headers.items()}}
    return refusal_before_body(judge, "POST", path, lambda name: sent.get(name.lower()))


def _answer(refused) -> tuple[int, dict, bytes]:
    head, _, body = refused.answer().partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body), head


def _spend(svc, key, credits):
    svc.redis.hincrby(svc.store.keys.usage(accounting.utc_day(time.time())), accounting.spent_field(key.id),
                      accounting.to_micro(credits))


def test_what_a_request_asks_for_is_told_by_its_method_and_path():
    assert asked("POST", "/v1/jobs") == (Asks.JOB, False)
    assert asked("POST", "/v1/jobs/track") == (Asks.TRACK, False)
    assert asked("POST", "/v1/batches?model=flux-2-pro") == (Asks.BATCH, False)
    assert asked("POST", "/v1/flux-2-pro") == (Asks.JOB, True)
    assert asked("POST", "/v1/flux-tools/video-edit-v1") == (Asks.JOB, True)
    for method, path in [("POST", "/v1/keys"), ("POST", "/v1/jobs/job_1/cancel"), ("GET", "/v1/jobs"),
                         ("POST", "/v1/batches/bat_1/cancel"), ("POST", "/webhooks/bfl")]:
        assert asked(method, path)[0] is None, path


def test_a_key_at_its_rate_is_refused_429_with_retry_after_and_nothing_counted(svc):
    key, secret = _key(svc, requests_per_minute=2)
    judge = _judge(svc)
    assert _refusal(judge, secret) is None
    for n in range(2):
        assert svc.store.app_keys.take_request(key.id, 2, time.time(), f"r{n}") == 0
    refused = _refusal(judge, secret)
    status, body, head = _answer(refused)
    assert (status, body["error"]["code"]) == (429, "rate_limited")
    assert b"\r\nRetry-After: " in head and b"\r\nConnection: close\r\n" in head
    assert svc.redis.zcard(svc.store.keys.key_requests(key.id)) == 2  # judged, not counted
    # Tracks count against it too; a cancel or another route does not.
    assert _refusal(judge, secret, "/v1/jobs/track").error.code == "rate_limited"
    assert _refusal(judge, secret, "/v1/jobs/job_x/cancel") is None


def test_a_small_body_is_left_to_the_app_whose_order_judges_it(svc):
    key, secret = _key(svc, requests_per_minute=1)
    judge = _judge(svc)
    assert svc.store.app_keys.take_request(key.id, 1, time.time(), "r0") == 0
    counted = Counted(svc.redis)

    assert _refusal(judge, secret, content_length=str(JUDGED_FROM_BYTES - 1)) is None
    assert counted.trips <= 1  # the key's record at most, not its counters
    assert _refusal(judge, secret, content_length=str(JUDGED_FROM_BYTES)).error.code == "rate_limited"


def test_a_key_whose_items_of_the_day_are_made_is_refused_from_the_head_another_key_not(svc):
    key, secret = _key(svc, items_per_day=3)
    other, others = _key(svc, items_per_day=3)
    judge = _judge(svc)
    assert svc.store.app_keys.take_items(key.id, 2, 20_000, 10_000, 3, time.time()) == ("", 0.0)
    assert _refusal(judge, secret, "/v1/batches") is None
    assert svc.store.app_keys.take_items(key.id, 1, 20_000, 10_000, 3, time.time()) == ("", 0.0)

    status, body, head = _answer(_refusal(judge, secret, "/v1/batches"))

    assert (status, body["error"]["code"]) == (429, "rate_limited") and b"\r\nRetry-After: " in head
    assert "3 jobs and batch items a UTC day" in body["error"]["message"]
    assert _refusal(judge, secret, "/v1/jobs/track").error.code == "rate_limited"
    assert _refusal(judge, others, "/v1/batches") is None


def test_a_key_whose_daily_credits_are_spent_is_refused_402_for_jobs_and_batches_not_tracks(svc):
    key, secret = _key(svc, daily_credits=1.0)
    judge = _judge(svc)
    _spend(svc, key, 0.5)
    assert _refusal(judge, secret) is None
    _spend(svc, key, 0.5)
    status, body, head = _answer(_refusal(judge, secret))
    assert (status, body["error"]["code"]) == (402, "budget_exceeded") and b"Retry-After" not in head
    assert _refusal(judge, secret, "/v1/batches").error.code == "budget_exceeded"
    assert _refusal(judge, secret, "/v1/jobs/track") is None  # a track spends nothing


def test_a_key_at_its_queue_limit_is_refused_queue_full_and_one_below_is_not(svc):
    key, secret = _key(svc, max_queued=5)
    judge = _judge(svc)
    svc.slots.hold_queue_room(key.id, "bat_held", 4, 5)
    assert _refusal(judge, secret, "/v1/batches") is None
    svc.slots.hold_queue_room(key.id, "bat_more", 1, 5)
    for path in ("/v1/jobs", "/v1/jobs/track", "/v1/batches"):
        status, body, head = _answer(_refusal(judge, secret, path))
        assert (status, body["error"]["code"]) == (429, "queue_full"), path
        assert b"\r\nRetry-After: 60\r\n" in head


def test_on_bfl_routes_the_refusal_is_in_bfl_shape(svc):
    key, secret = _key(svc, max_queued=1)
    svc.slots.hold_queue_room(key.id, "bat_held", 1, 1)
    status, body, head = _answer(_refusal(_judge(svc), secret, "/v1/flux-2-pro"))
    assert status == 429 and set(body) == {"detail"} and body["detail"].startswith("queue_full: ")
    assert b"Retry-After: " in head


def test_a_replayed_idempotency_key_is_not_refused_for_counters(svc):
    from receiver.idempotency_keys import named

    key, secret = _key(svc, max_queued=1)
    svc.slots.hold_queue_room(key.id, "bat_held", 1, 1)
    judge = _judge(svc)
    assert _refusal(judge, secret, idempotency_key="k-1").error.code == "queue_full"
    svc.redis.hset(svc.store.keys.idempotency(*named(secret, "k-1")), "status", 202)
    assert _refusal(judge, secret, idempotency_key="k-1") is None  # its first answer is replayed


def test_a_batch_is_refused_for_its_size_or_its_keys_places_with_no_redis_read_once_its_key_is_known(svc):
    key, secret = _key(svc)
    room = DividedRoom(BATCH_MAKING_ROOM, per_key=1)
    judge = _judge(svc, room)
    assert _refusal(judge, secret, "/v1/batches") is None  # the key read (and its counters): known from here
    counted = Counted(svc.redis)
    room.per_key = 0  # its batches fill its places
    status, body, head = _answer(_refusal(judge, secret, "/v1/batches"))
    assert (status, body["error"]["code"]) == (503, "batches_busy") and b"Retry-After: 5" in head
    assert _refusal(judge, secret, "/v1/batches", content_length=str(2**40)).error.code == "payload_too_large"
    assert _refusal(judge, secret, "/v1/jobs") is None  # only its batches
    assert counted.trips == 1
    assert _refusal(judge, API_TOKEN, "/v1/batches", content_length=str(2**40)).error.status == 413


def test_each_refusal_costs_one_round_trip_at_most_and_a_forged_or_missing_token_none_once_known(svc):
    key, secret = _key(svc, requests_per_minute=1)
    svc.store.app_keys.take_request(key.id, 1, time.time())
    judge = _judge(svc)
    counted = Counted(svc.redis)
    assert _refusal(judge, secret).error.code == "rate_limited"  # record and counters: one script
    assert counted.trips == 1
    assert _refusal(judge, secret).error.code == "rate_limited"  # record cached: the counters alone
    assert counted.trips == 2
    forged = "fhk_0123456789abcdef_" + "A" * 43
    assert _refusal(judge, forged).error.status == 401
    assert _refusal(judge, forged).error.status == 401
    assert counted.trips == 3  # the forged id's read, then remembered as no key's
    assert refusal_before_body(judge, "POST", "/v1/jobs", {}.get).error.status == 401
    assert counted.trips == 3


def test_a_revoked_key_is_refused_401_with_its_reason_and_bfl_answers_a_refused_key_403(svc):
    key, secret = _key(svc, revoked_at=1.0)
    refused = _refusal(_judge(svc), secret)
    assert refused.error.status == 401 and "revoked" in refused.error.message
    status, body, _ = _answer(_refusal(_judge(svc), secret, "/v1/flux-2-pro"))
    assert status == 403 and set(body) == {"detail"}


def test_a_usable_key_within_its_limits_and_an_admin_token_are_let_through(svc):
    _, secret = _key(svc, requests_per_minute=5, daily_credits=3.0, max_queued=10)
    judge = _judge(svc)
    for path in ("/v1/jobs", "/v1/jobs/track", "/v1/batches", "/v1/flux-2-pro"):
        assert _refusal(judge, secret, path) is None, path
        assert _refusal(judge, API_TOKEN, path) is None, path
