"""Rows 14-19: the apps' notifications: forged, listed, replayed, another's key, 410 and a flood."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook

from .harness import (
    BOUNDABLE,
    TERMINAL,
    Api,
    Probe,
    Row,
    codes,
    local_session,
    remove_all,
    settle,
    wait_job,
)
from .receivers import Received, verifies

WIDE = {"from": "2000-01-01", "to": "2100-01-01"}  # a time range around every message there is
FLOOD_JOBS = 30  # X's jobs whose every notification its receiver answers 500, two messages each
FLOOD_ALLOWANCE = 2.0  # seconds V's delivery may take beyond its own delay without the flood, in the same row


def notified(p: Probe, name: str, answer: int = 200) -> tuple[Api, str]:
    """A new app key whose notify_url is a receiver path of its own, verifying with the key's own secret."""
    path = p.receivers.path(name, answer)
    api = p.tenant(name, notify_url=p.receivers.url(path))
    p.receivers.verify_with(path, api.notify_secret)
    return api, path


def ended(api: Api, prompt: str, **fields: Any) -> str:
    """A job of the tenant's that BFL makes, run to its end (its job.ended then goes out); its id."""
    body = {"model": "flux-2-pro", "input": {"prompt": prompt, **BOUNDABLE}, **fields}
    job_id = api.post("/v1/jobs", body).json()["id"]
    wait_job(api, job_id, lambda j: j["status"] in TERMINAL, 30)
    return job_id


def both_ended(x: Api, v: Api, tag: str) -> tuple[str, str]:
    """A job of X's and one of V's, run side by side to their ends."""
    with ThreadPoolExecutor(2) as pool:
        x_job, v_job = pool.map(lambda api: ended(api, f"{tag} of {api.key_id}"), (x, v))
    return x_job, v_job


def arrived(p: Probe, path: str, job_id: str, count: int = 1, timeout: float = 20) -> list[Received]:
    """The POSTs of the job's job.ended message at ``path``, once there are ``count`` (or what came in ``timeout``)."""
    settle(lambda: len(p.receivers.of(path, f"msg_{job_id}")) >= count, timeout)
    return p.receivers.of(path, f"msg_{job_id}")


def message_of(api: Api, job_id: str) -> dict:
    """The job's job.ended message as its owner's console shows it (``{}`` before the sweep made it)."""
    answer = api.get(f"/v1/jobs/{job_id}/deliveries")
    found = answer.json().get("deliveries", []) if answer.status_code == 200 else []
    return next((m for m in found if m["id"] == f"msg_{job_id}"), {})


def delay_of(received: Received) -> float:
    """Seconds from the job's end (its ``completed_at``, else ``updated_at``) to the receiver having its job.ended:
    the body's ``timestamp`` is when the sweep made the message, up to a second later."""
    job = json.loads(received.body)["data"]
    return received.at - datetime.fromisoformat(job.get("completed_at") or job["updated_at"]).timestamp()


def row_forged_notification(p: Probe) -> Row:
    """14. forged notification: X, holding its own whsec_, signs a job.ended for V's receiver; tries it on V's real ones."""
    (x, _), (v, v_path) = notified(p, "x-forge"), notified(p, "v-forge")
    job_id = ended(v, "V's notified job")
    real = arrived(p, v_path, job_id)
    now = datetime.now(UTC)
    body = json.dumps({"type": "job.ended", "timestamp": now.isoformat().replace("+00:00", "Z"),
                       "data": {"id": job_id, "status": "stored", "image": {"url": "https://x.example/x.png"}}})
    msg_id = f"msg_{job_id}"
    forged = local_session().post(p.receivers.url(v_path), data=body, timeout=10, headers={
        "Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(x.notify_secret).sign(msg_id, now, body)})
    by_x = sum(verifies(x.notify_secret, r.body, r.headers) for r in real)
    holds = (bool(real) and all(r.verified for r in real) and forged.status_code == 401 and by_x == 0
             and x.notify_secret.startswith("whsec_") and x.notify_secret != v.notify_secret)
    return Row("forged notification: X signs V's job.ended with its own whsec_",
               f"forged POST answered {forged.status_code}",
               f"{len(real)} real, verified with V's secret: {sum(r.verified for r in real)}",
               f"X's secret verifies {by_x} of V's {len(real)}", holds)


def row_list_deliveries(p: Probe) -> Row:
    """15. listing: X lists deliveries (its own, a wide time range, by V's key id, V's job's)."""
    (x, x_path), (v, v_path) = notified(p, "x-list"), notified(p, "v-list")
    x_job, v_job = both_ended(x, v, "listed")
    arrived(p, x_path, x_job), arrived(p, v_path, v_job)
    lists = [x.get("/v1/deliveries", params={"limit": 1000}), x.get("/v1/deliveries", params={**WIDE, "limit": 1000}),
             x.get("/v1/deliveries", params={**WIDE, "state": "delivered"})]
    seen = {d["id"] for r in lists if r.status_code == 200 for d in r.json()["deliveries"]}
    by_job = x.get(f"/v1/jobs/{v_job}/deliveries").status_code
    by_key = x.get("/v1/deliveries", params={"key_id": v.key_id}).status_code
    v_sees = message_of(v, v_job).get("state")
    holds = (all(r.status_code == 200 for r in lists) and f"msg_{v_job}" not in seen and f"msg_{x_job}" in seen
             and by_job == 404 and by_key in (403, 404) and v_sees == "delivered")
    return Row("listing: X's /v1/deliveries (wide range), ?key_id=V, V's job's deliveries",
               f"lists {codes([r.status_code for r in lists])}: {len(seen)} messages, V's among them: "
               f"{f'msg_{v_job}' in seen}; key_id {by_key}, V's job {by_job}",
               f"V's own console: {v_sees}", f"X's own in its list: {f'msg_{x_job}' in seen}", holds)


def row_replay(p: Probe) -> Row:
    """16. replay: X replays V's message by id, by a wide bulk replay, and by naming V's key."""
    (x, x_path), (v, v_path) = notified(p, "x-replay"), notified(p, "v-replay")
    x_job, v_job = both_ended(x, v, "replayed")
    arrived(p, x_path, x_job), arrived(p, v_path, v_job)
    by_id = x.post(f"/v1/deliveries/msg_{v_job}/replay").status_code
    named = x.post("/v1/deliveries/replay", {"state": "delivered", **WIDE, "key_id": v.key_id}).status_code
    bulk = x.post("/v1/deliveries/replay", {"state": "delivered", **WIDE})
    replayed = bulk.json().get("replayed") if bulk.status_code == 202 else None
    own_again = len(arrived(p, x_path, x_job, count=2, timeout=15))
    # X's own replay has arrived: V's would have come with it; a few seconds more for a straggler.
    settle(lambda: len(p.receivers.of(v_path)) > 1, 3)
    v_got = len(p.receivers.of(v_path))
    holds = by_id == 404 and named == 403 and replayed == 1 and own_again == 2 and v_got == 1
    return Row("replay: X replays V's message by id, in bulk over all time, naming V's key",
               f"by id {by_id}, key_id {named}, bulk {bulk.status_code} replayed {replayed}",
               f"V's receiver got {v_got} POST (its one delivery)", f"X's own message arrived {own_again}×", holds)


def row_enable_rotate(p: Probe) -> Row:
    """17. V's key: X with its app token enables V's target, rotates V's secret, points V's notify_url at itself."""
    x, (v, v_path) = p.tenant("x-keys"), notified(p, "v-keys")
    x_path = p.receivers.path("x-keys")
    tries = [x.post(f"/v1/keys/{v.key_id}/notify/enable"), x.post(f"/v1/keys/{v.key_id}/notify_secret"),
             x.call("PATCH", f"/v1/keys/{v.key_id}", json={"notify_url": p.receivers.url(x_path)})]
    leaked = [t for t in tries if "whsec_" in t.text]
    job_id = ended(v, "V's job after X's tries")
    got = arrived(p, v_path, job_id)
    signatures = [len(r.headers.get("webhook-signature", "").split()) for r in got]
    to_x = len(p.receivers.of(x_path))
    holds = (all(t.status_code in (401, 403, 404) for t in tries) and not leaked and bool(got)
             and all(r.verified for r in got) and signatures == [1] * len(got) and to_x == 0)
    return Row("V's key: X's token on /notify/enable, /notify_secret, PATCH notify_url",
               f"{codes([t.status_code for t in tries])}, secrets in answers: {len(leaked)}",
               f"V's next job.ended verified with V's first secret: {all(r.verified for r in got) and bool(got)}, "
               f"signatures {signatures}", f"POSTs to X's receiver {to_x}", holds)


def row_gone(p: Probe) -> Row:
    """18. 410: X's receiver answers 410 Gone; X's target is disabled, V's (same host and port) goes on."""
    (x, x_path), (v, v_path) = notified(p, "x-gone", answer=410), notified(p, "v-gone")
    x_first, v_first = both_ended(x, v, "first")
    settle(lambda: message_of(x, x_first).get("state") in ("disabled", "failed", "delivered"), 20)
    first = message_of(x, x_first).get("state")
    x_second, v_second = both_ended(x, v, "second")
    v_got = [len(arrived(p, v_path, job)) for job in (v_first, v_second)]
    second = settle(lambda: message_of(x, x_second), 10) or {}
    x_posts = len(p.receivers.of(x_path, f"msg_{x_second}"))
    holds = (first == "disabled" and second.get("state") == "disabled" and not second.get("attempts")
             and x_posts == 0 and v_got == [1, 1] and message_of(v, v_second).get("state") == "delivered")
    return Row("410 Gone from X's receiver: X's target disabled, V's on the same host:port",
               f"X's first {first}, its next {second.get('state')} with {len(second.get('attempts') or [])} attempts "
               f"and {x_posts} POSTs", f"V's two job.ended delivered {v_got}",
               f"{len(p.receivers.of(x_path))} POST(s) to X's receiver in all", holds)


def row_flood(p: Probe) -> Row:
    """19. notification flood: X's receiver answers 500 to all of FLOOD_JOBS jobs' messages; V's delivery delay."""
    (x, x_path), (v, v_path) = notified(p, "x-flood", answer=500), notified(p, "v-flood")
    alone_job = ended(v, "V's job before the flood")
    alone = arrived(p, v_path, alone_job)
    body = {"model": "flux-2-pro", "notify_events": ["job.submitted"]}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: x.post("/v1/jobs", {**body, "input": {"prompt": f"X's flood {n}", **BOUNDABLE}}),
                                range(FLOOD_JOBS)))
    flood = [a.json()["id"] for a in answers if a.status_code == 202]
    settle(lambda: len(p.receivers.of(x_path)) >= len(flood), 20)  # X's job.submitted failing: the flood is on
    before = len(p.receivers.of(x_path))
    during_job = ended(v, "V's job in the flood")
    during = arrived(p, v_path, during_job)
    failing = len(p.receivers.of(x_path)) - before
    remove_all(x, flood)  # their messages go with them: no retries run into the next row
    base, flooded = (delay_of(got[0]) if got else math.inf for got in (alone, during))
    holds = len(flood) == FLOOD_JOBS and failing > 0 and flooded <= base + FLOOD_ALLOWANCE
    return Row(f"notification flood: {FLOOD_JOBS} X jobs, every POST to X's receiver answered 500",
               f"{codes([a.status_code for a in answers])}, {before + failing} POSTs answered 500",
               f"V's job.ended {flooded:.2f} s after its end ({failing} of X's 500s meanwhile)",
               f"without the flood {base:.2f} s; limit +{FLOOD_ALLOWANCE:g} s", holds)


ROWS = (row_forged_notification, row_list_deliveries, row_replay, row_enable_rotate, row_gone, row_flood)
