"""Rows 6-13: the web's start, limits per key, Redis's growth and sealing, forged tokens, and path tricks."""

from __future__ import annotations

import math
import secrets
import statistics
import time
import uuid

import redis
import requests

from ..processes import free_port, start_process, stop_process
from ..stack import procfile_commands
from .harness import (
    BFL_ANSWERS_AFTER,
    DAILY_LIMIT,
    KIB,
    SENT,
    TERMINAL,
    Api,
    Probe,
    Row,
    codes,
    finish,
    raw_status,
    remove_all,
    settle,
    submit_timed,
    wait_job,
)


def row_weak_secret(p: Probe) -> Row:
    """6. The web command with SECRET_KEY=changeme refuses to start."""
    port = free_port()
    env = dict(p.stack.env, SECRET_KEY="changeme", PORT=str(port), GUNICORN_CMD_ARGS=f"--bind 127.0.0.1:{port}")
    log = p.var_dir / "weak-web.log"
    started = time.monotonic()
    web = start_process(["sh", "-c", "exec " + procfile_commands()["web"]], env, log_path=str(log))
    stranger = Api(f"http://127.0.0.1:{port}")

    def answers() -> bool:
        try:
            return stranger.get("/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    served = settle(lambda: web.poll() is not None or answers(), 20, interval=0.2) and web.poll() is None
    took = time.monotonic() - started
    code = stop_process(web) if web.poll() is None else web.returncode
    said = next((line for line in log.read_text(errors="replace").splitlines() if "SECRET_KEY" in line), "")
    holds = not served and code not in (0, None) and "changeme" not in said
    return Row("weak SECRET_KEY=changeme on the web command", "-", f"exit {code} after {took:.1f} s, served: {served}",
               said.strip()[:90] or "(no line naming SECRET_KEY)", holds)


def row_max_active(p: Probe) -> Row:
    """7. X's jobs waiting for its max_active hold no reservation that keeps V's job from going."""
    x, v = p.tenant("x-max-active", max_active=1), p.tenant("v-max-active")
    usage = p.admin.get("/v1/usage").json()
    room = (usage.get("daily_limit") or DAILY_LIMIT) - (usage.get("spent_today") or 0)
    first = x.submit("[pending] X's one running job").json()["id"]
    wait_job(x, first, lambda j: j["status"] in SENT, 10)
    big = {"width": 2048, "height": 2048}  # flux-2-max at 4.2 MP: a bound of 17 credits each
    count = min(40, math.ceil(room / 17) + 2)
    waiting = [x.submit(f"X's waiting {n}", model="flux-2-max", **big) for n in range(count)]
    queued = [w.json()["id"] for w in waiting if w.status_code == 202]
    mine, job, took = submit_timed(v, "V's job beside X's waiting ones", 30)
    reason = (x.job(queued[-1]).get("waiting") or {}).get("reason") if queued else None
    remove_all(x, queued)
    finish(p, x, first)
    holds = mine.status_code == 202 and job.get("status") in SENT and took <= 3 + BFL_ANSWERS_AFTER
    return Row("reservations by max_active: X's waiting jobs' bounds exceed the day's room",
               f"{codes([w.status_code for w in waiting])} waiting {reason}",
               f"{mine.status_code}, {job.get('status')}", f"{count} × 17 credits vs {room:g} left; V sent in {took:.1f} s",
               holds)


def row_spent_day(p: Probe) -> Row:
    """8. X spends its whole daily_credits: X is refused, V goes on."""
    x, v = p.tenant("x-spent", daily_credits=6), p.tenant("v-spent", daily_credits=6)
    answers = []
    for n in range(5):
        answers.append(x.submit(f"X spends {n}").status_code)
        if answers[-1] == 402:
            break
    mine, job, took = submit_timed(v, "V after X's day is spent", 15)
    spent = p.spent_today(x)
    # The day ends at most one job's price (3 credits) above the key's limit.
    holds = spent <= 6 + 3 and mine.status_code == 202 and job.get("status") in SENT and took <= 3 + BFL_ANSWERS_AFTER
    return Row("a spent account day: X exhausts daily_credits 6", codes(answers), f"{mine.status_code}, {job.get('status')}",
               f"X spent {spent:g} of 6; V submitted in {took:.1f} s", holds)


def row_redis_growth(p: Probe) -> Row:
    """9. What X's waiting jobs cost Redis, per job, and while they wait."""
    # What earlier rows left running ends first: its download and thumbnail would count as X's.
    settle(lambda: not p.admin.get("/v1/jobs", params={"status": "submitted"}).json()["jobs"], 20, interval=0.5)
    x = p.tenant("x-growth", max_active=1)
    first = x.submit("[pending] X's one running job").json()["id"]
    wait_job(x, first, lambda j: j["status"] in SENT, 10)
    count = 50
    held, keys = keyspace_bytes(p.redis), p.redis.dbsize()
    queued = [x.submit(f"X's waiting {n}").json()["id"] for n in range(count)]
    grown, more_keys = keyspace_bytes(p.redis) - held, p.redis.dbsize() - keys
    time.sleep(10)  # waiting costs nothing per second: nothing more should be kept after 10 s
    later = keyspace_bytes(p.redis) - held - grown
    remove_all(x, queued)
    finish(p, x, first)
    per_job = grown / count
    holds = per_job <= 4 * KIB and later / count <= KIB
    return Row(f"Redis growth while {count} jobs wait", f"{count} jobs queued", "-",
               f"{per_job:,.0f} B and {more_keys / count:.1f} keys per job; {later / count:+,.0f} B per job over 10 s",
               holds)


def keyspace_bytes(connection: redis.Redis) -> int:
    """What every key holds (MEMORY USAGE), less noisy than INFO's used_memory, which moves with the allocator."""
    return sum(connection.memory_usage(key, samples=0) or 0 for key in connection.scan_iter(count=1000))


def row_forged_tokens(p: Probe) -> Row:
    """10. Key-shaped tokens: a made-up one and a real key's id with a wrong secret, and their timing."""
    v = p.tenant("v-forged")
    head, _, secret = v.token.rpartition("_")
    made_up = "fhk_" + secrets.token_hex(len(head) // 2) + "_" + secrets.token_urlsafe(len(secret))[:len(secret)]
    wrong = head + "_" + secrets.token_urlsafe(len(secret))[:len(secret)]
    callers = {token: Api(p.stack.base_url, token) for token in (made_up, wrong)}
    timings: dict[str, list[float]] = {made_up: [], wrong: []}
    statuses = []
    for _ in range(40):  # interleaved, so both meet the same load
        for token, caller in callers.items():
            started = time.perf_counter()
            statuses.append(caller.get("/v1/jobs").status_code)
            timings[token].append((time.perf_counter() - started) * 1000)
    a, b = (statistics.median(timings[t]) for t in (made_up, wrong))
    own = Api(p.stack.base_url, v.token).get("/v1/jobs").status_code
    # Worth noting: more than a millisecond, and more than half the faster one (a loaded machine wobbles).
    limit = max(1.0, min(a, b) / 2)
    holds = set(statuses) == {401} and abs(a - b) <= limit and own == 200
    return Row("forged key-shaped tokens (made-up, and V's id + wrong secret)", codes(statuses), f"V's own key {own}",
               f"median {a:.1f} ms vs {b:.1f} ms (difference {abs(a - b):.2f} ms, limit {limit:.1f})", holds)


def row_rate_limit(p: Probe) -> Row:
    """11. X floods its requests_per_minute: X gets 429, V's track goes through at its usual speed."""
    x, v = p.tenant("x-rate", requests_per_minute=5), p.tenant("v-rate", requests_per_minute=5)
    flood = [x.track(f"made-up-{uuid.uuid4()}") for _ in range(15)]
    started = time.perf_counter()
    mine = v.track(f"made-up-{uuid.uuid4()}")
    took = (time.perf_counter() - started) * 1000
    refused = [r for r in flood if r.status_code == 429]
    retry_after = refused[0].headers.get("Retry-After") if refused else None
    holds = bool(refused) and retry_after is not None and mine.status_code == 201
    return Row("requests_per_minute 5: X sends 15 tracks", codes([r.status_code for r in flood]),
               f"{mine.status_code} in {took:.0f} ms", f"X's Retry-After {retry_after}", holds)


def row_sealing(p: Probe) -> Row:
    """12. No BFL delivery link or callback body in the clear in Redis, while a download runs and a callback waits."""
    v = p.tenant("v-sealed")
    marker = f"probe-marker-{secrets.token_hex(8)}"
    p.bfl.settings(delivery_delay=3.0)  # the link stays in the job's record while its download runs
    try:
        job = v.submit("[pending] V's sealed link").json()
        wait_job(v, job["id"], lambda j: j["status"] in SENT, 10)
        p.bfl.complete(v.job(job["id"]).get("bfl_id") or "")
        during, _ = wait_job(v, job["id"], lambda j: j["status"] != "submitted", 10)
        kept = p.static_post({"id": f"untracked-{marker}", "status": "Ready",
                              "result": {"sample": f"https://delivery.example/{marker}.png?sig={marker}"}})
        values, scanned = every_value(p.redis)
    finally:
        p.bfl.settings(delivery_delay=0.0)
    delivery = p.bfl.base.removeprefix("http://") + "/delivery/"
    found = [needle for needle in (delivery, marker) if needle.encode() in values]
    holds = not found and kept.status_code == 202 and job["id"].encode() in values
    return Row("sealing: delivery links and kept callback bodies in Redis", f"kept callback {kept.status_code}",
               f"V's job {during.get('status')} during the scan",
               f"{scanned} keys, {len(values):,} B scanned; in the clear: {', '.join(found) or 'none'}", holds)


def every_value(connection: redis.Redis) -> tuple[bytes, int]:
    """Every key of the database and everything it holds, read by its type; and how many keys."""
    read = {b"string": lambda k: [connection.get(k)], b"hash": lambda k: connection.hgetall(k).items(),
            b"list": lambda k: connection.lrange(k, 0, -1), b"set": connection.smembers,
            b"zset": lambda k: connection.zrange(k, 0, -1), b"stream": lambda k: connection.xrange(k)}
    found = []
    for key in connection.scan_iter(count=1000):
        found += [key, repr(list(read.get(connection.type(key), lambda k: [])(key))).encode()]
    return b"\n".join(found), len(found) // 2


def row_path_tricks(p: Probe) -> Row:
    """13. X reaches for what is not its own by the path: dot segments, V's job id, V's image, V's job deleted."""
    x, v = p.tenant("x-paths"), p.tenant("v-paths")
    job = v.submit("V's job, reached for by path").json()
    wait_job(v, job["id"], lambda j: j["status"] in TERMINAL, 30)
    base, jid = p.stack.base_url, job["id"]
    traversal = [raw_status(base, path, x.token) for path in
                 ("/v1/jobs/../keys", "/v1/jobs/%2e%2e/keys", "/v1/jobs/%2E%2E%2Fkeys", f"/v1/jobs/{jid}/../../keys")]
    by_id = [x.get(f"/v1/jobs/{jid}").status_code, x.get(f"/v1/jobs/{jid}/image").status_code,
             x.get(f"/v1/jobs/{jid}/deliveries").status_code, x.post(f"/v1/jobs/{jid}/cancel").status_code,
             x.call("DELETE", f"/v1/jobs/{jid}").status_code]
    still = v.get(f"/v1/jobs/{jid}").status_code
    holds = all(code in (400, 403, 404) for code in traversal) and set(by_id) == {404} and still == 200
    return Row("path tricks: ../keys, %2e%2e, V's job id, its image, cancel, delete", f"dots {traversal}, V's id {by_id}",
               f"V's job still answers {still}", f"{len(traversal) + len(by_id)} requests", holds)


ROWS = (row_weak_secret, row_max_active, row_spent_day, row_redis_growth, row_forged_tokens, row_rate_limit,
        row_sealing, row_path_tricks)
