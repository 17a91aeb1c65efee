"""bench.redis_stack's placement of Redis: every thread of a Redis the bench starts runs on Redis's CPU."""

import os

import pytest

from bench import redis_stack
from devtools.processes import RedisServer


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_every_thread_of_a_redis_started_runs_on_its_cpu_and_the_bench_keeps_its_own(tmp_path, monkeypatch):
    cpus = sorted(os.sched_getaffinity(0))
    monkeypatch.setattr(redis_stack, "_REDIS_CPUS", {cpus[-1]})  # as give_redis_a_core leaves it, this process kept

    server = redis_stack.start_redis_server(RedisServer(directory=str(tmp_path)))
    try:
        threads = os.listdir(f"/proc/{server.process.pid}/task")
        placed = {int(thread): os.sched_getaffinity(int(thread)) for thread in threads}
    finally:
        server.stop()

    assert len(placed) > 1  # its background threads too (the AOF's)
    assert set(map(frozenset, placed.values())) == {frozenset({cpus[-1]})}
    assert sorted(os.sched_getaffinity(0)) == cpus


def test_with_no_cpu_of_its_own_redis_runs_where_the_bench_does(tmp_path):
    server = redis_stack.start_redis_server(RedisServer(directory=str(tmp_path)))
    try:
        assert os.sched_getaffinity(server.process.pid) == os.sched_getaffinity(0)
    finally:
        server.stop()
