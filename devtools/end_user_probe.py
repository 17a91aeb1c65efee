"""An attacker's probe of end users (docs/end-users.md): two app keys, A the attacker and B the victim, each naming
end users, on a stack of its own (Redis, the simulator, the Procfile's web and worker) bound to 127.0.0.1.

`python -m devtools.end_user_probe [--growth N]` prints one line per attempt: what was sent, what came back, and
HOLDS or BROKEN. Notes on what it found: docs/end-user-probe.md.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import redis

from .processes import free_port
from .stack import Stack
from .tenant_probe.harness import Api, Bfl, settle

ROWS: list[tuple[str, str, str, bool]] = []
MODEL = "flux-2-pro"
PRICE = 3.0  # flux-2-pro at 1 MP in the simulator
SIZE = {"width": 1000, "height": 1000}


def row(name: str, sent: str, got: str, holds: bool) -> None:
    ROWS.append((name, sent, got, holds))
    print(f"{'HOLDS ' if holds else 'BROKEN'} | {name} | sent: {sent} | got: {got}", flush=True)


def err(response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {response.text[:120]!r}"
    e = body.get("error") if isinstance(body, dict) else None
    if isinstance(e, dict):
        return f"{response.status_code} {e.get('code')}: {e.get('message', '')[:140]}"
    return f"{response.status_code} {str(body)[:160]}"


def submit(api: Api, prompt: str, end_user: Any = None, header: str | None = None, **extra: Any):
    body: dict[str, Any] = {"model": MODEL, "input": {"prompt": prompt, **SIZE}, **extra}
    if end_user is not None:
        body["end_user"] = end_user
    headers = {"X-End-User": header} if header is not None else {}
    return api.call("POST", "/v1/jobs", headers=headers, json=body)


def raw_request(base: str, token: str, header_lines: bytes, body: bytes, announce: int | None = None) -> str:
    """A request with headers as bytes (what requests would refuse to send); its status line. ``announce``: the
    Content-Length sent instead of the body's (a head announcing a body that never comes)."""
    parts = urlsplit(base)
    length = len(body) if announce is None else announce
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token.encode() +
                     b"\r\nContent-Type: application/json\r\nContent-Length: " + str(length).encode() + b"\r\n" +
                     header_lines + b"Connection: close\r\n\r\n" + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(errors="replace") + " " + rest[:160].decode(errors="replace")


class EndUserProbe:
    def __init__(self, var_dir: Path):
        port = free_port()
        env = {"PATH": "/usr/bin:/bin", "PORT": str(port), "LOG_LEVEL": "WARNING",
               "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}", "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
               "BFL_DAILY_CREDIT_LIMIT": "100000"}
        self.stack = Stack(env=env, var_dir=var_dir)

    def start(self) -> None:
        self.stack.start()
        env = self.stack.env
        self.admin = Api(self.stack.base_url, env["API_TOKENS"].split(",")[0])
        self.bfl = Bfl(env["BFL_API_BASE"])
        self.bfl.settings(submit_delay=0.05, task_delay=1.0)
        self.redis = redis.Redis.from_url(env["REDIS_URL"])
        if not settle(lambda: Api(self.stack.base_url).get("/readyz").status_code == 200, 60, interval=0.2):
            raise RuntimeError("stack not ready")

    def key(self, name: str, **fields: Any) -> Api:
        body = {"name": f"{name}-{uuid.uuid4().hex[:6]}", "reads_per_minute": 1_000_000, **fields}
        answer = self.admin.post("/v1/keys", body)
        answer.raise_for_status()
        made = answer.json()
        return Api(self.stack.base_url, made["key"], made["id"])

    def put_end_user(self, api: Api, end_user: str, limits: dict) -> None:
        self.admin.call("PUT", f"/v1/keys/{api.key_id}/end_users/{quote(end_user, safe='')}",
                        json=limits).raise_for_status()

    def stop(self) -> None:
        self.stack.stop()


# --------------------------------------------------------------------------- 1. cross-tenant

def cross_tenant(p: EndUserProbe, a: Api, b: Api) -> None:
    secret = "victim-" + uuid.uuid4().hex[:6]
    p.put_end_user(b, secret, {"daily_credits": 50})
    job = submit(b, "victim job", end_user=secret).json()
    settle(lambda: b.job(job["id"])["status"] in ("stored", "failed"), 20)
    for method, path in (("GET", f"/v1/keys/{b.key_id}/end_users/{secret}"),
                         ("PUT", f"/v1/keys/{b.key_id}/end_users/{secret}"),
                         ("POST", f"/v1/keys/{b.key_id}/end_users/{secret}/block"),
                         ("POST", f"/v1/keys/{b.key_id}/end_users/{secret}/unblock"),
                         ("GET", f"/v1/keys/{b.key_id}/end_users"),
                         ("GET", f"/v1/keys/{a.key_id}/end_users")):
        got = a.call(method, path, json={"daily_credits": 0} if method == "PUT" else None)
        row("1 cross-tenant key routes", f"A {method} {path.replace(b.key_id, '{B}').replace(a.key_id, '{A}')}",
            err(got), got.status_code in (401, 403, 404))
    shown = p.admin.get(f"/v1/keys/{b.key_id}/end_users/{secret}").json()
    row("1 B's end user unchanged", "admin GET B's end user after A's tries", str(shown)[:160],
        "blocked" not in str(shown).lower() or not shown.get("blocked"))
    for params in ({"group_by": "end_user"}, {"group_by": "end_user", "key_id": b.key_id},
                   {"end_user": secret}, {"end_user": secret, "key_id": b.key_id}):
        got = a.get("/v1/usage", params=params)
        row("1 usage by end user", f"A /v1/usage {params}".replace(b.key_id, "{B}"), err(got)[:160],
            secret not in got.text and b.key_id not in got.text)
    for params in ({"end_user": secret}, {"end_user": secret, "key_id": b.key_id}):
        got = a.get("/v1/jobs", params=params)
        row("1 jobs by end user", f"A /v1/jobs {params}".replace(b.key_id, "{B}"), err(got)[:120],
            got.status_code in (200, 400) and secret not in got.text and job["id"] not in got.text)
    got = a.get(f"/v1/jobs/{job['id']}")
    row("1 B's job by id", "A GET B's job", err(got)[:100], got.status_code == 404)
    # A names B's end user on its own jobs: its own counters, never B's limits or block.
    p.admin.post(f"/v1/keys/{b.key_id}/end_users/{secret}/block")
    got = submit(a, "A names B's blocked end user", end_user=secret)
    row("1 same name, other key", "B blocks its end user; A submits with the same name", err(got)[:100],
        got.status_code == 202)
    p.admin.post(f"/v1/keys/{b.key_id}/end_users/{secret}/unblock")


# --------------------------------------------------------------------------- 2. limits evasion

def limits(p: EndUserProbe, a: Api) -> None:
    rate = "rate-x"
    p.put_end_user(a, rate, {"requests_per_minute": 3})
    codes = [submit(a, f"rate {n}", end_user=rate).status_code for n in range(5)]
    row("2 requests_per_minute", "5 jobs of end user with rpm 3", str(codes), codes.count(202) == 3)
    variants = {"case": "RATE-X", "trailing space": "rate-x ", "leading space": " rate-x",
                "fullwidth": "ｒａｔｅ-x", "NFD": "rate-x\u0301"}
    got = {name: submit(a, f"rate v {name}", end_user=v).status_code for name, v in variants.items()}
    row("2 name variants", "same rpm-3 end user spelt otherwise (case, spaces, fullwidth, combining)",
        f"{got} (each a new end user: names are opaque, the app chooses them)", True)
    wide = "jürgen-ü"
    p.put_end_user(a, wide, {"requests_per_minute": 2})
    first = [submit(a, f"wide {n}", end_user=wide).status_code for n in range(2)]
    got = a.call("POST", "/v1/jobs", headers={"X-End-User": wide.encode()},  # UTF-8 bytes, as curl sends them
                 json={"model": MODEL, "input": {"prompt": "wide header", **SIZE}})
    row("2 non-ASCII name by header", "rpm-2 end user 'jürgen-ü': 2 by body, then X-End-User as UTF-8 bytes",
        f"{first} then {err(got)[:110]}", got.status_code == 429)
    got = submit(a, "hdr/body", end_user=rate, header="other-user")
    row("2 header vs body disagree", "body end_user=rate-x, X-End-User=other-user", err(got)[:120],
        got.status_code == 400)
    got = submit(a, "header only", header=rate)
    row("2 header names limited user", "X-End-User: rate-x (no body)", err(got)[:120], got.status_code == 429)
    got = a.call("POST", f"/v1/{MODEL}", headers={"X-End-User": rate, "x-key": a.token},
                 json={"prompt": "drop-in rate", **SIZE})
    row("2 drop-in X-End-User rate", "POST /v1/flux-2-pro X-End-User: rate-x", err(got)[:120],
        got.status_code == 429)
    got = a.call("POST", f"/v1/{MODEL}", json={"prompt": "drop-in rate body", "end_user": rate, **SIZE})
    row("2 drop-in body end_user rate", "POST /v1/flux-2-pro body end_user rate-x", err(got)[:120],
        got.status_code == 429)
    # Batches: per-line end users, and a header on the batch.
    batch = {"model": MODEL, "items": [{"input": {"prompt": f"batch rate {n}", **SIZE}, "end_user": rate}
                                       for n in range(6)]}
    got = a.post("/v1/batches", batch)
    row("2 batch per-line end user past rpm", "batch of 6 items, each end_user=rate-x (rpm 3, spent)",
        err(got)[:140], got.status_code == 429 and "end user 'rate-x'" in got.text)
    got = a.call("POST", "/v1/batches", headers={"X-End-User": "hdr-user"},
                 json={"model": MODEL, "items": [{"input": {"prompt": "bh", **SIZE}, "end_user": "line-user"}]})
    row("2 batch header + line", "batch X-End-User: hdr-user, item end_user line-user", err(got)[:120], True)

    # daily_credits: 2 prices; a burst of single jobs, and the drop-in route.
    credits = "credit-x"
    p.put_end_user(a, credits, {"daily_credits": 2 * PRICE})
    answers = [submit(a, f"credit {n}", end_user=credits) for n in range(4)]
    ids = [r.json()["id"] for r in answers if r.status_code == 202]
    settle(lambda: all(a.job(i)["status"] in ("stored", "failed", "queued") and
                       (a.job(i)["status"] != "queued" or (a.job(i).get("waiting") or {}).get("reason"))
                       for i in ids), 30)
    spent = p.admin.get(f"/v1/keys/{a.key_id}/end_users/{credits}").json()
    sent = sum(1 for i in ids if a.job(i)["status"] not in ("queued",))
    row("2 daily_credits", f"4 jobs of end user with daily_credits {2 * PRICE}",
        f"{[r.status_code for r in answers]}, sent {sent}; end user: {str(spent)[:160]}", sent <= 3)
    got = a.call("POST", f"/v1/{MODEL}", headers={"X-End-User": credits}, json={"prompt": "drop-in credit", **SIZE})
    row("2 drop-in daily_credits", "POST /v1/flux-2-pro X-End-User: credit-x (spent)", err(got)[:140],
        got.status_code in (402, 200))
    batch = {"model": MODEL, "items": [{"input": {"prompt": f"batch credit {n}", **SIZE}, "end_user": credits}
                                       for n in range(5)]}
    got = a.post("/v1/batches", batch)
    made = got.json() if got.status_code < 300 else {}
    time.sleep(8)
    listed = a.get("/v1/jobs", params={"end_user": credits, "limit": 100}).json().get("jobs", [])
    sent_batch = [j for j in listed if "batch credit" in (j.get("prompt") or "") and j["status"] != "queued"]
    row("2 batch daily_credits", "batch of 5 items end_user=credit-x (spent)",
        f"{got.status_code} {made.get('id')}; items sent to BFL: {len(sent_batch)}", not sent_batch)

    # max_queued: one at BFL at a time, its tasks held pending, the rest wait.
    queue = "queue-x"
    p.put_end_user(a, queue, {"max_queued": 2, "max_active": 1})
    codes = [submit(a, f"[pending] queue {n}", end_user=queue).status_code for n in range(5)]
    row("2 max_queued", "5 jobs (pending tasks) of end user max_queued 2, max_active 1", str(codes),
        codes.count(202) <= 3)
    got = a.call("POST", f"/v1/{MODEL}", headers={"X-End-User": queue}, json={"prompt": "[pending] dq", **SIZE})
    row("2 drop-in max_queued", "POST /v1/flux-2-pro X-End-User: queue-x (full)", err(got)[:120],
        got.status_code == 429)
    batch = {"model": MODEL, "items": [{"input": {"prompt": f"[pending] batch queue {n}", **SIZE},
                                        "end_user": queue} for n in range(20)]}
    got = a.post("/v1/batches", batch)
    row("2 batch past max_queued", "batch of 20 items end_user=queue-x (queue full at 2)",
        err(got)[:120], got.status_code == 429 and "end user 'queue-x'" in got.text)
    # end_user never reaches BFL
    marker = uuid.uuid4().hex[:8]
    a.call("POST", f"/v1/{MODEL}", json={"prompt": f"strip {marker}", "end_user": "strip-me", **SIZE})
    a.call("POST", f"/v1/{MODEL}", headers={"X-End-User": "strip-me"}, json={"prompt": f"strip {marker}", **SIZE})
    submit(a, f"strip {marker}", end_user="strip-me")
    tasks = settle(lambda: (t := p.bfl.tasks(marker)) and len(t) >= 3 and t, 20) or p.bfl.tasks(marker)
    fields = sorted({f for t in tasks for f in t["fields"]})
    row("2 end_user not sent to BFL", "3 jobs naming end_user (drop-in body, header, /v1/jobs)",
        f"{len(tasks)} tasks; fields BFL got: {fields}", len(tasks) == 3 and "end_user" not in fields)


# --------------------------------------------------------------------------- 3. Redis growth

def growth(p: EndUserProbe, b: Api, n: int) -> None:
    a = p.key("growth", items_per_day=n // 2, requests_per_minute=100_000,
              end_user_limits={"requests_per_minute": 1000, "max_queued": 1000})
    p.bfl.settings(task_delay=0.2)

    def b_latency() -> float:
        times = []
        for k in range(8):
            started = time.monotonic()
            submit(b, f"b timing {k}")
            times.append(time.monotonic() - started)
        return statistics.median(times)

    before_b = b_latency()
    time.sleep(5)
    mem0, keys0 = p.redis.info("memory")["used_memory"], p.redis.dbsize()
    codes: dict[int, int] = {}
    started = time.monotonic()
    refused_at = None
    for k in range(n):
        code = submit(a, "g", end_user=f"eu-{k:06d}-{uuid.uuid4().hex[:8]}").status_code
        codes[code] = codes.get(code, 0) + 1
        if code != 202 and refused_at is None:
            refused_at = k
        if k == n // 4:
            during_b = b_latency()
    took = time.monotonic() - started
    time.sleep(10)
    mem1, keys1 = p.redis.info("memory")["used_memory"], p.redis.dbsize()
    made = codes.get(202, 0)
    per = (mem1 - mem0) / max(made, 1)
    control = p.key("growth-control", items_per_day=n // 2, requests_per_minute=100_000,
                    end_user_limits={"requests_per_minute": 1000, "max_queued": 1000})
    mem2 = p.redis.info("memory")["used_memory"]
    one = sum(submit(control, "g", end_user="one-user").status_code == 202 for _ in range(made))
    time.sleep(10)
    mem3 = p.redis.info("memory")["used_memory"]
    per_end_user = ((mem1 - mem0) - (mem3 - mem2)) / max(made, 1)
    end_user_keys = sum(1 for _ in p.redis.scan_iter(match="*endus*", count=1000))
    row("3 Redis growth", f"A: {n} requests, each a new end user (items_per_day {n // 2}), {took:.0f} s",
        f"answers {codes}, first refusal at #{refused_at}; DBSIZE {keys0}->{keys1}; used_memory +{(mem1 - mem0) / 1e6:.1f}"
        f" MB = {per:.0f} B per job made; the same {one} jobs naming one end user +{(mem3 - mem2) / 1e6:.1f} MB: "
        f"{per_end_user:.0f} B per new end user; end-user keys now {end_user_keys}",
        refused_at is not None and refused_at <= n // 2)
    row("3 B's latency", "B's POST /v1/jobs p50 before / during A's flood", f"{before_b * 1000:.0f} ms / "
        f"{during_b * 1000:.0f} ms", during_b < max(1.0, 5 * before_b))
    p.bfl.settings(task_delay=1.0)


# --------------------------------------------------------------------------- 4. bad input

def bad_input(p: EndUserProbe, a: Api) -> None:
    jobs_before = len(a.get("/v1/jobs", params={"limit": 100}).json()["jobs"])
    dbsize = p.redis.dbsize()
    cases = {"129 chars": "x" * 129, "empty": "", "control \\x01": "a\x01b", "newline": "a\nb", "tab": "a\tb",
             "number": 42, "object": {"id": 1}, "list": ["a"], "true": True, "zero-width space": "a\u200bb",
             "RTL override": "a\u202eb", "lone surrogate": "a\ud800b"}
    for name, value in cases.items():
        try:
            got = submit(a, "bad", end_user=value)
            text = err(got)
            ok = got.status_code == 400
        except Exception as exc:  # requests may refuse to encode it
            text, ok = f"client refused: {type(exc).__name__}", True
        row("4 bad end_user (body)", name, text[:120], ok)
    after = p.redis.dbsize()
    jobs_after = len(a.get("/v1/jobs", params={"limit": 100}).json()["jobs"])
    row("4 nothing created (body)", f"{len(cases)} refused bodies", f"jobs {jobs_before} -> {jobs_after}, "
        f"DBSIZE {dbsize} -> {after}", jobs_after == jobs_before and after <= dbsize + 2)
    row("4 128 chars accepted", "end_user of 128 chars", err(submit(a, "ok", end_user="y" * 128))[:60], True)
    base, token = p.stack.base_url, a.token or ""
    body = b'{"model": "flux-2-pro", "input": {"prompt": "raw", "width": 1000, "height": 1000}}'
    for name, line in {"non-UTF-8 bytes": b"X-End-User: ab\xff\xfe\r\n", "latin-1 e-acute": b"X-End-User: caf\xe9\r\n",
                       "empty header": b"X-End-User: \r\n", "obs-fold newline": b"X-End-User: a\r\n b\r\n",
                       "bare LF": b"X-End-User: a\nb\r\n", "control byte": b"X-End-User: a\x01b\r\n",
                       "two headers": b"X-End-User: one\r\nX-End-User: two\r\n"}.items():
        status = raw_request(base, token, line, body)
        row("4 bad X-End-User", name, status[:140], " 202 " not in status[:13])
    twice = raw_request(base, token, b"X-End-User: one\r\nX-End-User: two\r\n", body)
    row("4 two X-End-User headers", "X-End-User: one + X-End-User: two", twice[:140],
        " 400 " in twice[:13] and "X-End-User" in twice)
    for name, value in {"number": 7, "129 chars": "z" * 129, "newline": "a\nb"}.items():
        got = a.call("POST", f"/v1/{MODEL}", json={"prompt": "bad drop-in", "end_user": value, **SIZE})
        row("4 bad end_user (drop-in body)", name, err(got)[:120], got.status_code == 422)
    for path in ("/v1/jobs", "/v1/usage"):
        got = a.get(path, params={"end_user": "a\x01b"})
        row("4 bad ?end_user=", f"{path}?end_user=a%01b", err(got)[:100], got.status_code == 400)
    body = b'{"model": "flux-2-pro", "end_user": "ab\xff", "input": {"prompt": "raw"}}'
    status = raw_request(base, token, b"", body)
    row("4 non-UTF-8 in body", "end_user with byte 0xff in JSON", status[:120], " 400 " in status[:13])


# --------------------------------------------------------------------------- 5. blocking

def blocking(p: EndUserProbe, a: Api, b: Api) -> None:
    name = "blk-x"
    p.put_end_user(a, name, {"max_active": 1})
    ids = [submit(a, f"[pending] blk {n}", end_user=name).json()["id"] for n in range(3)]
    settle(lambda: a.job(ids[0])["status"] == "submitted", 15)
    got = p.admin.post(f"/v1/keys/{a.key_id}/end_users/{name}/block")
    row("5 block", "admin blocks A's blk-x", err(got)[:100], got.status_code == 200)
    time.sleep(1.2)
    got = submit(a, "after block", end_user=name)
    row("5 blocked refused", "A submits as blk-x", err(got)[:140], got.status_code == 403)
    got = a.call("POST", f"/v1/{MODEL}", headers={"X-End-User": name}, json={"prompt": "blk dropin", **SIZE})
    row("5 blocked drop-in", "POST /v1/flux-2-pro X-End-User: blk-x", err(got)[:140], got.status_code == 403)
    got = a.post("/v1/batches", {"model": MODEL, "items": [{"input": {"prompt": "blk batch", **SIZE},
                                                            "end_user": name}]})
    row("5 blocked batch", "batch item end_user blk-x", err(got)[:140], got.status_code == 403)
    got = submit(b, "B same name", end_user=name)
    row("5 B's same-named end user", "B submits as blk-x", err(got)[:80], got.status_code == 202)
    p.bfl.complete(a.job(ids[0])["bfl_id"] or "")
    time.sleep(6)
    ended = [a.job(i) for i in ids]
    states = [(j["status"], (j.get("error") or {}).get("code"), bool(j.get("bfl_id"))) for j in ended]
    row("5 queued jobs after block", "3 jobs, 1 at BFL and 2 queued before the block; the first finished",
        f"{states} (docs: its queued ones end canceled, never sent)",
        ended[0]["status"] == "stored" and all(s == ("canceled", "end_user_blocked", False) for s in states[1:]))
    got = raw_request(p.stack.base_url, a.token or "", f"X-End-User: {name}\r\n".encode(), b"",
                      announce=50 * 2**20)
    row("5 blocked by header before body", f"head X-End-User: {name}, Content-Length 50 MiB, no body", got[:120],
        " 403 " in got[:13] and "end_user_blocked" in got)
    got = p.admin.post(f"/v1/keys/{a.key_id}/end_users/{name}/unblock")
    time.sleep(1.2)
    again = submit(a, "after unblock", end_user=name)
    row("5 unblock", "admin unblocks; A submits as blk-x", f"{err(got)[:40]}; then {err(again)[:60]}",
        again.status_code == 202)
    for i in ids:
        a.call("POST", f"/v1/jobs/{i}/cancel")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--growth", type=int, default=1000, help="requests of the Redis growth row (0: skip it)")
    args = parser.parse_args()
    var_dir = Path(tempfile.mkdtemp(prefix="end-user-probe-"))
    p = EndUserProbe(var_dir)
    p.start()
    try:
        limits_ = {"requests_per_minute": 100_000}
        a = p.key("attacker", **limits_, end_user_moderation_limit=3)
        b = p.key("victim", **limits_, end_user_limits={"requests_per_minute": 5})
        for step in (lambda: cross_tenant(p, a, b), lambda: limits(p, a), lambda: bad_input(p, a),
                     lambda: blocking(p, a, b), lambda: args.growth and growth(p, b, args.growth)):
            try:
                step()
            except Exception as exc:  # one part failing leaves the others to run
                row("error", step.__code__.co_names[0] if step.__code__.co_names else "?",
                    f"{type(exc).__name__}: {str(exc)[:200]}", False)
    finally:
        p.stop()
        shutil.rmtree(var_dir, ignore_errors=True)
    broken = [r for r in ROWS if not r[3]]
    print(f"\n{len(ROWS)} rows, {len(broken)} BROKEN")
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
