"""What a stored job costs Redis, counted the way ``make bench-redis`` counts it: the Procfile's processes on a Redis
of their own, BFL answering each submission after 1 s, 20 jobs posted through ``POST /v1/jobs`` and waited for until
each is stored with its thumbnail. Redis's own ``INFO``, before and after, less what the same stack ran per second at
rest just before (its heartbeats): the commands (``commandstats``) and round trips (``total_reads_processed``) a stored
job costs. Not a speed figure (those live in bench/): a count, so a change that adds round trips per job (a second
task per job, a loop that costs per kind of work) fails here.

The test's own commands stay out of the count: it waits on the thumbnail files (no Redis command), confirms
the records with ``HSTRLEN`` (a command fluxhook never sends) and reads ``INFO``; both are left out, and so is a
round trip for each.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests

from conftest import API_TOKEN
from devtools.processes import wait_until
from fluxhook.media import thumbnails
from fluxhook.store.keys import KEYS
from helpers import stack_on_db

# The wake watcher's looks would be counted among the stack's own Redis commands (tests/watchers.py).
pytestmark = pytest.mark.wake_watch_off("counts the Redis commands its stack sends")

JOBS = 20
# How many requests the count (and the jobs before it) posts at once.
CLIENTS = 8
IDLE_SECONDS = 4.0
# Measured with this test (20 jobs, a slot for each: no job waits for one): 111.8 commands and 13.2 round trips a stored
# job (twice; 114.1 to 115.9 and 12.6 to 13.2 before, in the same session) once a move into RQ was held by its job's
# lease alone (no moving hash: its HSET, its HGETALL at each take, its HDEL with the task). Before that: 114.3 to 116.5
# commands and 12.7 to 13.8
# round trips a stored job, the machine shared with other work (load 2 to 12), once a request's submission answered
# with its step's one read of the record (no HGETALL after it), an ending job was made anew from its step's one read
# (no DUMP and RESTORE), three counts or more in one hash went in one HMGET and one HSET (a submission's four usage
# counts), and a new job that takes a slot while no line holds one no longer joined its line to leave it at once.
# Before those: 122.3 to 123.9 and 13.3 to 13.9 (docs/benchmarks.md, "the second round", as kept with RQ's public
# names only). Earlier, with RQ's private names: 117.0 to 119.1 commands
# and 13.1 to 13.8 round trips a stored job, the machine shared with other work (load 1 to 4; 118.3 beside four CPU
# burners, 119.0 on Debian's Redis 7), once a lane's task end wrote its state and beat in one HSET, its start wrote
# neither its state nor a PERSIST of a task with no TTL, RQ's record of a task went in one HSET with no SADD of its
# queue, a download handed at once was queued under its lock's own part (no relabel) and held due by its move's lease
# alone, and RQ's total working time was no longer written (8 commands a job); and the loops while jobs are about did
# less: a tally's write gives an hourly hash its life only as a count starts in it, the sweep looks at empty deadline
# and batch indexes with one EXISTS, the balance looks every 5 s, a lane checks for a lost end only once idle and
# feeds as it takes a task, not as it ends one (a full queue had no room then). Counted before with the jobs before
# the count posted one at a time (each web thread's connection then opened in the count, about 0.6 commands and round
# trips a job): 128.7 to 129.5 and 14.9 to 15.4 lightly loaded, 129.3 to 132.5 and 15.1 to 16.3 busy (four CPU
# burners, or the unit suite, beside it on 2 cores). What varies from run to run is mostly the work a burst of
# callbacks sends through the download line while RQ's queue is full (about 7 commands more for each such job) and the
# loops, which grow with the run's length: a busy machine counts more of both.
# Earlier: 146.0 to 150.4 before a job's RQ task started in one MULTI and ended in one, its start beat the worker only
# when its record would lapse, the request that creates a job sent it with its lock alone, and the feeder waited on its
# wake-up list; 139 to 140 once the slot scripts read every account's slots held in one count, and cooldowns and pauses
# in one EXISTS; 152 to 153 once work whose turn is now went to RQ from the change that added it; 161 to 163 before a
# slot freed with no job in any line woke no dispatcher; 180 to 185 before a slot's holder was one entry; 200 to 202
# before a task's end ran without RQ reading its executions back; 255 before the scripts touched only the job's own
# pool, line, slot and record fields; 378 to 383 before the thumbnail was made by the download task. Sends paced by
# storage add about 0.1 a job (a count tallied per process, the backlog read every few seconds by a sweep).
CEILING = 120
TRIPS_CEILING = 16
# The test's own: its INFO snapshots and its HSTRLEN confirmations.
OWN = ("info", "hstrlen")


@pytest.fixture(scope="module")
def measured(own_redis, simulator, _spies, tmp_path_factory):
    with stack_on_db(own_redis, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("redis-cost-stack")), 0,
                     WORKER_PROCESSES="1") as running:
        yield running


def _calls(db: redis.Redis) -> tuple[int, int]:
    """Every command Redis has run (those run by scripts included, as Redis counts them), less the test's own, and
    its reads of client sockets (``total_reads_processed``: one a round trip), less the test's own (one a command:
    it pipelines none)."""
    info = db.info("all")
    stats = {k.removeprefix("cmdstat_"): v for k, v in info.items() if k.startswith("cmdstat_")}
    own = sum(int(stats[name]["calls"]) for name in OWN if name in stats)
    calls = sum(int(v["calls"]) for name, v in stats.items() if name not in OWN)
    return calls, int(info["total_reads_processed"]) - own


def _post(base_url: str, n: int) -> str:
    response = requests.post(f"{base_url}/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": f"cost {n}"}},
                             headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_a_stored_job_costs_redis_fewer_commands_than_the_ceiling(measured, sim):
    sim.settings(submit_delay=1.0, task_delay=1.0)
    db = redis.Redis.from_url(measured.env["REDIS_URL"])
    images = measured.var_dir / "images"
    time.sleep(IDLE_SECONDS / 2)  # the stack's start-up settles: its first sweep, its migration, its cron thread's jobs
    idle_from, idle_started = _calls(db), time.monotonic()
    time.sleep(IDLE_SECONDS)  # the idle window itself: what the stack costs at rest, per second
    idle_to, idle_seconds = _calls(db), time.monotonic() - idle_started
    idle_rate, idle_reads = ((idle_to[i] - idle_from[i]) / idle_seconds for i in (0, 1))
    # Jobs before the count, as a stack that has run some: its processes' connections opened and scripts loaded (a
    # new connection's HELLO and PING, a first EVALSHA's NOSCRIPT and its SCRIPT LOAD, once a process), not a job's
    # cost. As many at once as the count posts at once, so every web thread the count's requests reach has its
    # connection (one job warmed one: each other's two trips and commands, about 0.6 of each a job, were counted).
    # The loops they wake run on into the count, as they would for the jobs counted.
    with ThreadPoolExecutor(CLIENTS) as pool:
        warm = list(pool.map(lambda n: _post(measured.base_url, n), range(JOBS, JOBS + CLIENTS)))
    wait_until(lambda: all(db.hstrlen(KEYS.job(j), "thumbnail_key") for j in warm), timeout=60,
               message="the jobs before the count stored")
    time.sleep(1.0)  # their tasks' ends

    before, started = _calls(db), time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        ids = list(pool.map(lambda n: _post(measured.base_url, n), range(JOBS)))
    wait_until(lambda: all((images / thumbnails.key_for(j)).exists() for j in ids), timeout=60,
               message="every job stored with its thumbnail")
    # The thumbnail's file is written just before its record names it.
    wait_until(lambda: all(db.hstrlen(KEYS.job(j), "thumbnail_key") for j in ids), timeout=10,
               message="every thumbnail recorded")
    time.sleep(1.0)  # the tasks' ends and the lanes' feeds after them
    after, seconds = _calls(db), time.monotonic() - started

    per_job = (after[0] - before[0] - idle_rate * seconds) / JOBS
    trips = (after[1] - before[1] - idle_reads * seconds) / JOBS
    print(f"{per_job:.1f} commands and {trips:.1f} round trips a stored job ({idle_rate:.1f} and {idle_reads:.1f}/s idle)")
    assert 0 < per_job <= CEILING, f"{per_job:.0f} commands a stored job, above {CEILING} ({idle_rate:.0f}/s idle)"
    assert 0 < trips <= TRIPS_CEILING, f"{trips:.1f} round trips a stored job, above {TRIPS_CEILING}"
