"""At rest it costs nothing, and waking costs nothing: the Procfile's web and one worker process on a Redis
of their own, a job stored first, then Redis's own ``INFO commandstats`` read over a rest of ``WINDOW`` seconds; and a
job's notification after a rest, timed from its job's end to the receiver's first POST.

The figures docs/scaling.md holds to are over 10 minutes (``make bench-idle --seconds 600`` measures them); this reads the same
rate over a shorter window, once the first job's after-effects are over (``SETTLE``: the lanes' checks after a task,
the balance read after an end). The test's own commands stay out of the count: it reads ``INFO`` and the job's record
with ``HSTRLEN`` and ``HGET`` before and after the window, never during it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
import requests

from conftest import API_TOKEN
from devtools.processes import RedisServer
from fluxhook.store.keys import KEYS
from helpers import stack_on_db
from notify_helpers import SECRET, receiving

# The wake watcher's looks would be counted among the stack's own Redis commands (tests/watchers.py).
pytestmark = pytest.mark.wake_watch_off("counts the Redis commands its stack sends")

# After the first job: its lanes' checks for a lost end (worker.lanes.IDLE_CHECK_FOR) and its balance's reads are over.
SETTLE = 62.0
WINDOW = 30.0
# docs/scaling.md: a web process and a worker process together, at most one command a second.
AT_REST_MOST = 1.0
# docs/scaling.md: a notification's first attempt starts within 0.2 s of its job's end; the margin is its POST's own time on
# a shared machine.
WAKE_MOST = 0.2 + 0.15
OWN = ("cmdstat_info",)


@pytest.fixture(scope="module")
def receiver():
    with receiving(1) as made:
        yield made[0]


@pytest.fixture(scope="module")
def resting(simulator, _spies, receiver, tmp_path_factory):
    server = RedisServer().start()
    try:
        with stack_on_db(server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("rest-stack")), 0,
                         WORKER_PROCESSES="1", NOTIFY_URL=receiver.url(), NOTIFY_SECRET=SECRET,
                         NOTIFY_HOST_ALLOWLIST=f"127.0.0.1:{receiver.port}") as running:
            yield running
    finally:
        server.stop()


def _calls(db: redis.Redis) -> int:
    return sum(int(v["calls"]) for name, v in db.info("commandstats").items() if name not in OWN)


def _stored_job(base_url: str, db: redis.Redis, receiver) -> str:
    answer = requests.post(f"{base_url}/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "at rest"}},
                           headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=30)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    receiver.wait_for(job_id, timeout=60)
    return job_id


def test_at_rest_a_web_and_a_worker_make_at_most_one_redis_command_a_second(resting, sim, receiver):
    db = redis.Redis.from_url(resting.env["REDIS_URL"])
    _stored_job(resting.base_url, db, receiver)
    time.sleep(SETTLE)  # the rest itself: nothing to wait on but the clock
    before, started = _calls(db), time.monotonic()
    time.sleep(WINDOW)
    rate = (_calls(db) - before) / (time.monotonic() - started)
    print(f"at rest: {rate:.2f} Redis commands a second")
    assert rate <= AT_REST_MOST, f"{rate:.2f} commands a second at rest, above {AT_REST_MOST}"


def test_after_a_rest_a_jobs_notification_starts_within_a_fifth_of_a_second_of_its_end(resting, sim, receiver):
    db = redis.Redis.from_url(resting.env["REDIS_URL"])
    _stored_job(resting.base_url, db, receiver)
    time.sleep(10.0)  # at rest again: the notifier waits for the earliest due time it knows, none
    job_id = _stored_job(resting.base_url, db, receiver)
    ended = float(db.hget(KEYS.job(job_id), "completed_at"))
    first = min(delivery.at for delivery in receiver.for_job(job_id))
    print(f"notification {first - ended:.3f} s after its job's end")
    assert first - ended <= WAKE_MOST, f"the notification came {first - ended:.3f} s after its job's end"
