"""A worker started on a Redis an older release wrote migrates before it takes work (fluxhook/store/migrations.py,
run by worker/run.py): a job the older release left in its line is sent and stored, and the schema is recorded. The
migration's steps in-process: tests/unit/store/test_migrations.py."""

from __future__ import annotations

import os
import time

import redis

from conftest import API, service_env
from devtools.processes import free_port
from devtools.stack import Stack
from fluxhook.core import job as st
from fluxhook.core.accounts import DEFAULT_POOL
from fluxhook.core.job import Job, new_job_id
from fluxhook.store.jobs import JobStore
from fluxhook.store.keys import KEYS
from fluxhook.store.migrations import SCHEMA_VERSION

DB = 13  # a database of this test's own stack (the other modules that use it run their stacks one at a time)


def test_a_job_an_older_release_left_in_line_is_stored_once_a_worker_starts(redis_server, simulator, _spies,
                                                                           tmp_path):
    env = dict(os.environ)
    env.update(service_env(redis_server, simulator, _spies[0].port, free_port(),
                           STORAGE_URL=f"file://{tmp_path / 'images'}"))
    env["REDIS_URL"] = redis_server.url.replace("/0", f"/{DB}")
    connection = redis.Redis.from_url(env["REDIS_URL"])
    connection.flushdb()
    now = time.time()
    job = Job(id=new_job_id(now), status=st.QUEUED, model="flux-2-pro", input={"prompt": "left in line"},
              pool=DEFAULT_POOL, created_at=now, updated_at=now)
    JobStore(connection).create(job)
    connection.zadd(KEYS.legacy_line(DEFAULT_POOL), {job.id: now})  # as a release before fair share kept it
    running = Stack(env=env, var_dir=tmp_path)
    running.start()
    try:
        assert API(running.base_url).wait_for(job.id, timeout=30)["status"] == "stored"
        assert int(connection.get(KEYS.schema)) == SCHEMA_VERSION
        assert connection.exists(KEYS.legacy_line(DEFAULT_POOL), KEYS.schema_lock) == 0
    finally:
        running.stop()
        connection.flushdb()
