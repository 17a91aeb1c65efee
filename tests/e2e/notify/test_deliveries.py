"""The notifications console end to end: events and the body's shape, every attempt listed, replay with
the same webhook-id, a 410 disabling a target until it is enabled, Retry-After honoured, a key seeing only its own,
and an app's failing receiver logged as WARNING lines, never a traceback. Receivers: tests/e2e/notify/conftest.py."""

from __future__ import annotations

import json
import time
from datetime import datetime

from standardwebhooks import Webhook

from devtools.processes import wait_until
from key_helpers import make_key
from notify_helpers import SECRET


def _messages(api, job_id: str, count: int = 1, state: str | None = None) -> list[dict]:
    """The job's messages, once ``count`` of them are there (in ``state``, if given)."""
    def found():
        listed = api.get(f"/v1/jobs/{job_id}/deliveries").json()["deliveries"]
        settled = [m for m in listed if state is None or m["state"] == state]
        return listed if len(settled) >= count else None
    return wait_until(found, timeout=30, interval=0.1, message=f"{count} message(s) of {job_id}")


def test_submitted_and_ended_events_in_standard_webhooks_shape(napi, sim, hooks):
    job = napi.submit("a fox that tells each step", notify_events=["job.submitted"])
    napi.wait_for(job["id"])
    [submitted] = wait_until(lambda: hooks.for_message(f"msg_{job['id']}_submitted") or None, timeout=30)
    [ended] = hooks.wait_for(job["id"])
    bodies = [Webhook(SECRET).verify(d.body, d.headers) for d in (submitted, ended)]
    assert [b["type"] for b in bodies] == ["job.submitted", "job.ended"]
    assert all(set(b) == {"type", "timestamp", "data"} and b["data"]["id"] == job["id"] for b in bodies)
    assert bodies[1]["data"]["status"] == "stored" and bodies[1]["timestamp"].endswith("Z")
    listed = _messages(napi, job["id"], 2, "delivered")
    assert [(m["event"], m["id"]) for m in listed] == [("job.submitted", f"msg_{job['id']}_submitted"),
                                                       ("job.ended", f"msg_{job['id']}")]
    # A job that asks for nothing gets its end only.
    quiet = napi.submit("a quiet fox")
    napi.wait_for(quiet["id"])
    hooks.wait_for(quiet["id"])
    assert [m["event"] for m in _messages(napi, quiet["id"], 1, "delivered")] == ["job.ended"]
    assert napi.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "x"},
                                       "notify_events": ["job.everything"]}).status_code == 400


def test_attempts_are_listed_after_a_500_then_a_200_and_replay_keeps_the_webhook_id(napi, sim, hooks, notify_stack):
    hooks.failures = 1
    job = napi.submit("a fox behind a flaky app, then replayed")
    napi.wait_for(job["id"])
    first, second = hooks.wait_for(job["id"], count=2)
    [message] = _messages(napi, job["id"], 1, "delivered")
    assert message["id"] == f"msg_{job['id']}" and message["event"] == "job.ended"
    assert message["target"] == f"127.0.0.1:{hooks.port}" and "/hooks" not in json.dumps(message)
    assert [a["status"] for a in message["attempts"]] == [500, 200]
    assert all(a["error"] is None and a["ms"] >= 0 and a["at"].endswith("Z") for a in message["attempts"])

    replayed = napi.post(f"/v1/deliveries/{message['id']}/replay")
    assert replayed.status_code == 202, replayed.text
    third = hooks.wait_for(job["id"], count=3)[2]
    assert third.headers["webhook-id"] == first.headers["webhook-id"] == f"msg_{job['id']}"
    assert Webhook(SECRET).verify(third.body, third.headers)["data"]["id"] == job["id"]
    # The attempt is recorded once its answer is read, a moment after the receiver took it.
    def statuses() -> list[int] | None:
        listed = [a["status"] for a in _messages(napi, job["id"])[0]["attempts"]]
        return listed if len(listed) >= 3 else None

    assert wait_until(statuses, timeout=30, interval=0.1, message="the replay's attempt listed") == [500, 200, 200]
    assert napi.post("/v1/deliveries/msg_job_nope/replay").status_code == 404

    # The failing attempt was one WARNING line with its status; no log line of the worker holds a traceback.
    log = (notify_stack.var_dir / "worker.log").read_text(errors="replace")
    warned = [json.loads(line) for line in log.splitlines() if line.startswith("{") and job["id"] in line
              and '"WARNING"' in line]
    assert [line.get("http_status") for line in warned] == [500]
    assert "Traceback" not in log and "RetryableError" not in log


def test_410_disables_the_target_for_the_key_until_an_admin_enables_it(napi, sim, other_hooks):
    key, app = make_key(napi, notify_url=other_hooks.url("/gone"))
    other_hooks.statuses["/gone"] = 410
    first = app.submit("a fox for an app that left")
    [gone] = _messages(app, first["id"], 1, "disabled")
    assert [a["status"] for a in gone["attempts"]] == [410]
    later = app.submit("a fox nobody will be told of")
    [kept] = _messages(app, later["id"], 1, "disabled")
    assert kept["attempts"] == [] and len([d for d in other_hooks.deliveries if d.path == "/gone"]) == 1
    assert [m["id"] for m in app.get("/v1/deliveries", params={"state": "disabled"}).json()["deliveries"]] == [
        kept["id"], gone["id"]]

    other_hooks.statuses["/gone"] = 200
    enabled = napi.post(f"/v1/keys/{key['id']}/notify/enable")
    assert enabled.status_code == 200 and enabled.json()["enabled"] == 1
    assert app.post(f"/v1/keys/{key['id']}/notify/enable").status_code == 403  # admins only
    answer = app.post("/v1/deliveries/replay", json={"state": "disabled"})
    assert answer.status_code == 202 and answer.json()["replayed"] == 2
    _messages(app, later["id"], 1, "delivered")
    _messages(app, first["id"], 1, "delivered")
    assert other_hooks.for_job(later["id"])[0].headers["webhook-id"] == f"msg_{later['id']}"


def test_retry_after_delays_the_next_attempt(napi, sim, third_hooks):
    third_hooks.statuses["/busy"], third_hooks.retry_after["/busy"] = 503, "4"
    job = napi.submit("a fox for a busy app", notify_url=third_hooks.url("/busy"))
    [first] = third_hooks.wait_for(job["id"])
    third_hooks.statuses["/busy"] = 200
    second = third_hooks.wait_for(job["id"], count=2)[1]
    assert second.at - first.at >= 4  # the schedule alone would have waited 1-2 s
    assert [a["status"] for a in _messages(napi, job["id"], 1, "delivered")[0]["attempts"]] == [503, 200]


def test_a_key_sees_and_replays_only_its_own_deliveries(napi, sim, other_hooks):
    _, app_a = make_key(napi, notify_url=other_hooks.url("/a"))
    _, app_b = make_key(napi, notify_url=other_hooks.url("/b"))
    job_a = app_a.submit("a fox of app a")
    [message] = _messages(app_a, job_a["id"], 1, "delivered")
    assert app_b.get(f"/v1/jobs/{job_a['id']}/deliveries").status_code == 404
    assert message["id"] not in [m["id"] for m in app_b.get("/v1/deliveries").json()["deliveries"]]
    assert message["id"] in [m["id"] for m in app_a.get("/v1/deliveries").json()["deliveries"]]
    assert app_b.post(f"/v1/deliveries/{message['id']}/replay").status_code == 404
    assert app_b.get("/v1/deliveries", params={"key_id": "key_0000000000000000"}).status_code == 403
    assert app_a.get("/v1/deliveries", params={"state": "lost"}).status_code == 400
    assert app_a.get("/v1/deliveries", params={"colour": "red"}).status_code == 400
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    assert app_a.get("/v1/deliveries", params={"from": since}).json()["deliveries"] == []


def test_job_progress_goes_at_most_every_5_seconds_and_the_latest_is_not_lost(napi, sim, hooks):
    key, app = make_key(napi, notify_events=["job.progress"])
    job = app.submit("[pending] a fox that reports its progress")
    webhook = Webhook(key["notify_secret"])

    def progress_bodies() -> list[dict]:
        return [webhook.verify(d.body, d.headers) for d in hooks.of_job(job["id"])
                if "_progress_" in d.headers["webhook-id"]]

    for progress in (0.6, 0.7):
        assert app.callback(job["id"], {"id": job["bfl_id"], "status": "Generating", "progress": progress}).ok
    wait_until(lambda: progress_bodies() or None, timeout=30, message="a job.progress")
    assert app.callback(job["id"], {"id": job["bfl_id"], "status": "Generating", "progress": 0.9}).ok
    wait_until(lambda: len(progress_bodies()) >= 2 or None, timeout=30, message="a second job.progress")
    # The latest progress is not lost: the last job.progress carries the job as it is once it stops changing.
    wait_until(lambda: progress_bodies()[-1]["data"]["progress"] == app.job(job["id"])["progress"], timeout=30,
               message="the last job.progress to carry the job's progress")
    bodies = progress_bodies()
    assert {b["type"] for b in bodies} == {"job.progress"}
    made = sorted(datetime.fromisoformat(m["created_at"].replace("Z", "+00:00")).timestamp()
                  for m in _messages(app, job["id"], len(bodies)) if m["event"] == "job.progress")
    assert all(later - earlier >= 4.99 for earlier, later in zip(made, made[1:], strict=False))  # one every 5 s at most
    assert len({d.headers["webhook-id"] for d in hooks.of_job(job["id"])}) == len(made)
