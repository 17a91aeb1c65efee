"""Rows 36-37: what X's batch asks for (docs/api.md): its batch.ended sent to V's receiver, and hostile bodies on
``POST /v1/batches`` (JSON and NDJSON): each refused whole, nothing made."""

from __future__ import annotations

import json
import socket
import uuid

from .harness import BOUNDABLE, TERMINAL, Api, Probe, Row, codes, settle, wait_job
from .receivers import Receivers, verifies
from .rows_batches import NDJSON, batch_of, error_code, item_jobs, items, made_by, post_batch, post_ndjson
from .rows_notify import notified

# --------------------------------------------------------------------------- 36: X's batch.ended at V's receiver


def row_batch_notify(p: Probe) -> Row:
    """36. X's batch notifies V's receiver: refused off NOTIFY_HOST_ALLOWLIST, else signed with X's secret only."""
    (x, x_path), (v, v_path) = notified(p, "x-batch-notify"), notified(p, "v-batch-notify")
    elsewhere = Receivers()  # V's receiver on a port NOTIFY_HOST_ALLOWLIST does not list
    try:
        off = elsewhere.url(elsewhere.path("v-elsewhere"))
        allowed = f"127.0.0.1:{p.receivers.port}"
        tricks = (off, f"http://{allowed}@127.0.0.1:{elsewhere.port}/v", f"http://127.0.0.1:{elsewhere.port}#@{allowed}/",
                  f"http://127.0.0.1:{elsewhere.port}\\@{allowed}/", f"http://127.0.0.1:{elsewhere.port}/?@{allowed}")
        before = made_by(x)
        refused = [post_batch(x, items(1, "X's batch to elsewhere"), notify_url=url) for url in tricks]
        refused.append(post_ndjson(x, json.dumps({"input": {"prompt": "X's line", **BOUNDABLE}}).encode(),
                                   notify_url=off))
        made_off = made_by(x) != before
        marker = f"v-batch-notify-{uuid.uuid4().hex[:8]}"
        v_batch = post_batch(v, items(2, marker), metadata={"secret": marker}).json()["id"]
        x_batch = post_batch(x, items(2, "X's batch notifying V's receiver"), notify_url=p.receivers.url(v_path),
                             notify_events=["batch.ended", "job.ended"]).json()["id"]
        x_ids = {f"msg_{x_batch}"} | {f"msg_{job['id']}" for job in item_jobs(x, x_batch)}
        v_ids = {v_batch, v.key_id, marker} | {job["id"] for job in item_jobs(v, v_batch)}
        # V's batch.ended, and X's three messages (its batch's end and its two items' ends), each tried at least once.
        settle(lambda: p.receivers.of(v_path, f"msg_{v_batch}") and
               {r.webhook_id for r in p.receivers.of(v_path)} >= x_ids, 40, interval=0.3)
        at_v = p.receivers.of(v_path)
        from_x = [r for r in at_v if r.webhook_id in x_ids]
        v_own = [r for r in at_v if r.webhook_id == f"msg_{v_batch}"]
        x_end = next((json.loads(r.body) for r in from_x if r.webhook_id == f"msg_{x_batch}"), {})
        carried = sum(any(word.encode() in r.body for word in v_ids) for r in from_x + p.receivers.of(x_path))
        by_x = sum(verifies(x.notify_secret, r.body, r.headers) for r in from_x)
        by_v = sum(r.verified for r in from_x)
        elsewhere_got = len(elsewhere.got)
    finally:
        elsewhere.stop()
    data = x_end.get("data") or {}
    holds = (all(r.status_code == 400 for r in refused) and not made_off and elsewhere_got == 0
             and {r.webhook_id for r in from_x} == x_ids and by_x == len(from_x) and by_v == 0
             and all(r.status == 401 for r in from_x) and carried == 0 and x_end.get("type") == "batch.ended"
             and data.get("id") == x_batch and data.get("key_id") == x.key_id and data["counts"]["total"] == 2
             and bool(v_own) and all(r.verified for r in v_own))
    return Row("X's batch notify_url: V's receiver off the allowlist (5 spellings, JSON and NDJSON), then on it",
               f"off the allowlist {codes([r.status_code for r in refused])} "
               f"({', '.join(sorted({str(error_code(r)) for r in refused}))}), made {made_off}; on it "
               f"{len(from_x)} POSTs of X's ({len(x_ids)} messages) verified by X's secret {by_x}",
               f"V's secret verified {by_v} of X's (answered {codes([r.status for r in from_x])}); V's own batch.ended "
               f"verified {sum(r.verified for r in v_own)}/{len(v_own)}",
               f"X's messages carrying V's batch, items, key or metadata: {carried}; X's batch.ended: "
               f"{data.get('id') == x_batch} id, total {data.get('counts', {}).get('total')}", holds)


# --------------------------------------------------------------------------- 37: hostile bodies

MIB = 1024 * 1024
ANSWER_CAP = 4096  # bytes: a refusal names what is wrong without echoing the body back


def nested(depth: int) -> str:
    """A JSON object ``depth`` levels deep, as text."""
    return '{"a":' * (depth - 1) + '{"a":1' + "}" * depth


def lines(*texts: str) -> bytes:
    return ("\n".join(texts) + "\n").encode()


def raw_json(api: Api, text: str):
    return api.call("POST", "/v1/batches", data=text.encode(), headers={"Content-Type": "application/json"},
                    timeout=60)


def announced(p: Probe, api: Api, size: int) -> tuple[int, str, int]:
    """An NDJSON body announced as ``size`` bytes, of which 64 KiB is sent: the answer's status, code and size."""
    host, port = p.stack.base_url.removeprefix("http://").split(":")
    answer = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = (f"POST /v1/batches?model=flux-2-pro HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Authorization: Bearer {api.token}\r\nContent-Type: {NDJSON}\r\nContent-Length: {size}\r\n"
                "Connection: close\r\n\r\n")
        try:
            sock.sendall(head.encode() + b'{"input": {"prompt": "' + b"x" * 65536)
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass  # closed once the refusal was sent
    status_line, _, rest = answer.partition(b"\r\n")
    body = rest.partition(b"\r\n\r\n")[2]
    parts = status_line.split(b" ")
    code = (json.loads(body).get("error") or {}).get("code") if body.startswith(b"{") else None
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), str(code), len(body)


def row_batch_bodies(p: Probe) -> Row:
    """37. X's hostile batch bodies: a bad NDJSON line, 10,001 items, webhook_url in input, deep metadata, huge lines."""
    x = p.tenant("x-batch-bodies")
    marker = f"x-bodies-{uuid.uuid4().hex[:8]}"
    good = json.dumps({"input": {"prompt": f"{marker} a good line", **BOUNDABLE}})
    item = {"input": {"prompt": f"{marker} item", **BOUNDABLE}}
    many = items(10_001, marker)
    deep_item = '{"input": {"prompt": "%s deep"}, "metadata": %s}'
    sends = {
        "NDJSON line 2 not JSON": lambda: post_ndjson(x, lines(good, '{"input": {"prompt": "x"', good)),
        "NDJSON line a list": lambda: post_ndjson(x, lines(good, "[1, 2]")),
        "10,001 items (JSON)": lambda: post_batch(x, many, timeout=60),
        "10,001 lines (NDJSON)": lambda: post_ndjson(x, lines(*(json.dumps(i) for i in many))),
        "webhook_url in input": lambda: post_batch(x, [item, {"input": {**item["input"],
                                                                        "webhook_url": "http://127.0.0.1:9/x"}}]),
        "webhook_secret in input (NDJSON)": lambda: post_ndjson(x, lines(good, json.dumps(
            {"input": {**item["input"], "webhook_secret": "s"}}))),
        "item metadata 40 deep": lambda: post_batch(x, [{**item, "metadata": json.loads(nested(40))}]),
        "item metadata 100,000 deep": lambda: raw_json(x, '{"model": "flux-2-pro", "items": [%s]}'
                                                       % (deep_item % (marker, nested(100_000)))),
        "batch metadata 40 deep": lambda: post_batch(x, [item], metadata=json.loads(nested(40))),
        "NDJSON line metadata 40 deep": lambda: post_ndjson(x, lines(deep_item % (marker, nested(40)))),
        "NDJSON ?metadata= 40 deep": lambda: post_ndjson(x, lines(good), metadata=nested(40)),
        "NDJSON ?metadata= 3,000 deep": lambda: post_ndjson(x, lines(good), metadata='{"a":%s}' % ("[" * 3000
                                                                                             + "]" * 3000)),
        "NDJSON ?metadata= NaN": lambda: post_ndjson(x, lines(good), metadata='{"a": NaN}'),
        "NDJSON ?notify_events= 5,000 deep": lambda: post_ndjson(x, lines(good), notify_events="[" * 5_000 + "]" * 5_000),
        "a 16 MiB line, not JSON": lambda: post_ndjson(x, lines(good, '{"input": {"prompt": "' + "x" * (16 * MIB))),
        "a 16 MiB line, 16 MiB of metadata": lambda: post_ndjson(x, lines(json.dumps(
            {**item, "metadata": {"pad": "x" * (16 * MIB)}}))),
    }
    before, spent_before = made_by(x), p.spent_today(x)
    got = {}
    for name, send in sends.items():
        answer = send()
        got[name] = (answer.status_code, str(error_code(answer)), len(answer.content))
    got["257 MiB announced (NDJSON)"] = announced(p, x, 257 * MIB)
    after, sent = made_by(x), len(p.bfl.tasks(marker))
    # The operator's list of every batch still reads as strict JSON, whatever got through.
    listing = p.admin.get("/v1/batches", params={"limit": 100})
    strict = listing.status_code == 200 and strict_json(listing.content)
    # What got through, if anything, is canceled (it ran nothing of the next row's).
    for batch in x.get("/v1/batches", params={"limit": 100}).json()["batches"]:
        x.post(f"/v1/batches/{batch['id']}/cancel")
    control = post_ndjson(x, lines(good))  # the same door with a good body: made, so the refusals were the bodies'
    if control.status_code == 202:
        settle(lambda: batch_of(x, control.json()["id"]).get("status") == "ended", 20)
    jobs = item_jobs(x, control.json().get("id", "")) if control.status_code == 202 else []
    for job in jobs:
        wait_job(x, job["id"], lambda j: j["status"] in TERMINAL, 20)
    bad = {name: f"{status} {code}" for name, (status, code, _) in got.items() if status not in (400, 413)}
    largest = max(size for _, _, size in got.values())
    holds = (not bad and after == before and sent == 0 and p.spent_today(x) <= spent_before + 3
             and largest <= ANSWER_CAP and control.status_code == 202 and strict)
    return Row(f"{len(got)} hostile batch bodies (bad NDJSON line, 10,001 items, webhook_url, deep metadata, 16 MiB lines)",
               f"{codes([s for s, _, _ in got.values()])} ({', '.join(sorted({c for _, c, _ in got.values()}))})"
               + (f"; not refused: {'; '.join(f'{n}: {s}' for n, s in bad.items())}" if bad else ""),
               f"the admin's GET /v1/batches {listing.status_code}, strict JSON {strict}",
               f"X's batches/jobs {before} → {after}, BFL tasks {sent}; largest answer {largest:,} B; "
               f"a good body after {control.status_code}", holds)


def strict_json(body: bytes) -> bool:
    """Whether ``body`` is JSON as a strict parser reads it (no NaN or Infinity, which Python's json writes)."""
    def refuse(name: str) -> None:
        raise ValueError(name)

    try:
        json.loads(body, parse_constant=refuse)
        return True
    except ValueError:
        return False


ROWS = (row_batch_notify, row_batch_bodies)
