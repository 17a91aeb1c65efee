"""What bench.redis_cost reads of a real Redis: a command's first call grows Redis 7's memory by a latency histogram
(none on 6.2), which the bench measures and keeps out of the jobs' data."""

import pytest
import redis

from bench.redis_cost import Snapshot, histogram_size
from devtools.processes import RedisServer


@pytest.fixture()
def fresh(tmp_path):
    """A Redis of its own: the suite's shared one has long since called ECHO (the probe's command)."""
    server = RedisServer(directory=str(tmp_path)).start()
    yield redis.Redis.from_url(server.url, decode_responses=True)
    server.stop()


def test_a_command_s_first_call_moves_not_the_jobs_data_and_the_probe_runs_once(fresh):
    size = histogram_size(fresh)
    tracking = fresh.config_get("latency-tracking").get("latency-tracking") == "yes"  # Redis 7's, on by default
    assert 10_000 < size < 100_000 if tracking else size == 0
    before = Snapshot.take(fresh, size)
    for command in ("LASTSAVE", "TIME", "DBSIZE", "RANDOMKEY"):  # four commands never called on this server
        fresh.execute_command(command)
    after = Snapshot.take(fresh, size)

    assert abs(after.data - before.data) < 1024
    with pytest.raises(RuntimeError, match="ECHO was called before the probe"):
        histogram_size(fresh)
