"""The MONITOR attribution of bench.redis_steps and the key census of bench.redis_cost, on hand-made lines."""

from bench.redis_cost import census_growth
from bench.redis_steps import round_trips, signature


def line(at: float, port: str, command: str) -> dict:
    return {"time": at, "client_port": "" if port == "lua" else port,
            "client_type": "lua" if port == "lua" else "tcp", "command": command}


def test_a_script_takes_its_lua_commands_and_a_multi_block_is_one_round_trip():
    lines = [line(1.0, "5001", "EVALSHA abc 1 fh:job:job_1"), line(1.0, "lua", "HGET fh:job:job_1 status"),
             line(1.0, "lua", "HSET fh:job:job_1 status ready"), line(1.1, "5002", "MULTI"),
             line(1.1, "5002", "HSET rq:worker:0123456789abcdef0123456789abcdef state busy"),
             line(1.1, "5002", "EXEC"), line(1.2, "5003", "INFO all"), line(9.0, "5001", "GET late")]
    trips = round_trips(lines, 0.5, 2.0)
    assert [len(t["commands"]) for t in trips] == [3, 3]  # the bench's INFO and the line after the window left out
    assert signature(trips[0], {"abc": "job_transition"}) == "script job_transition"
    assert signature(trips[1], {}) == "MULTI: HSET rq:worker:<hex>"


def test_the_census_counts_growth_per_job_and_what_outlives_an_hour():
    before = {"fh:jobs": [1, 100, 100]}
    after = {"fh:jobs": [1, 300, 300], "rq:job:download-<job>": [2, 4000, 0]}
    rows = {r[0]: r[1:] for r in census_growth(before, after, 2)}
    assert rows["fh:jobs"] == (0, 100, 100)
    assert rows["rq:job:download-<job>"] == (1, 2000, 0)
