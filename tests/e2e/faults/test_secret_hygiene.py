"""No secret in any log the session's processes write, nor in what anyone may read without a token.

One flow through the Procfile's processes and the simulator that handles every kind of secret:
the BFL API key, bearer tokens, SECRET_KEY and what is derived from it (webhook secrets, webhook-URL
and image-URL tokens), BFL_WEBHOOK_SECRET, HMAC signatures and BFL's signed delivery links; then
every log file is searched for each of them. And BFL's delivery links are kept in Redis sealed: neither
its keys nor its AOF hold their signature.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import redis
import requests

from conftest import API, API_TOKEN, SECRET_KEY, STATIC_SECRET, ready_payload
from devtools.processes import wait_until
from devtools.stack import SIMULATOR_KEY
from fluxhook.core import signing
from fluxhook.core.signing import Sealer
from fluxhook.store.keys import KEYS
from helpers import OTHER_KEY, SECOND_TOKEN, hmac_hex, nested, raw_exchange, secret_of, serve_png, webhook_url


def _log_files(stack, tmp_path_factory) -> list[Path]:
    files = sorted(stack.var_dir.glob("*.log"))
    # The session's simulator logs next to its fixture's temporary directory (sim0/simulator.log).
    files += sorted(tmp_path_factory.getbasetemp().glob("sim*/simulator.log"))
    return files


def _wait_logged(path: Path, *needles: str, timeout: float = 15.0) -> None:
    wait_until(lambda: all(n in path.read_text(errors="replace") for n in needles), timeout=timeout,
               message=f"{path.name} to log {needles}")


def test_no_key_token_signature_or_secret_appears_in_any_log(api, sim, spy, stack, tmp_path_factory):
    sim.settings(webhook_mode="both")  # BFL's callbacks carry the secret and an HMAC signature
    second = API(stack.base_url, token=SECOND_TOKEN)
    sent_signatures: list[str] = []
    # A tracked task whose callback never comes is polled with the API key after the 2 s grace period
    # (started first, so that the grace period passes while the rest of the flow runs).
    polled_task = sim.http.post(f"{sim.url}/v1/flux-2-pro", json={"prompt": "[pending] hygiene polled"},
                                headers={"x-key": SIMULATOR_KEY}, timeout=10).json()
    polled = api.track(polled_task["id"], polling_url=polled_task["polling_url"]).json()

    # A job BFL completes by itself: its genuine callback is signed, its image comes from a signed link.
    job = api.submit("[pending] hygiene")
    other = second.submit("[pending] hygiene other")
    pending = json.dumps({"id": job["bfl_id"], "status": "Pending"}).encode()
    signature = hmac_hex(secret_of(job["id"]), pending)
    sent_signatures.append(signature)
    assert requests.post(webhook_url(api.base_url, job["id"]), data=pending, timeout=10, headers={
        "Content-Type": "application/json", "X-BFL-Signature": "sha256=" + signature}).status_code == 200
    # Refused callbacks: another job's secret, a forged signature, a token that is not ours.
    refused = [
        api.callback(job["id"], {"id": job["bfl_id"], "status": "Error"}, secret=secret_of(other["id"])),
        api.callback(job["id"], {"id": job["bfl_id"], "status": "Error"}, secret=secret_of(other["id"]), signature=True),
        requests.post(webhook_url(api.base_url, job["id"], OTHER_KEY), data=pending, timeout=10,
                      headers={"X-Webhook-Secret": secret_of(job["id"])}),
        api.post("/v1/jobs", data=nested(100_000), headers={"Content-Type": "application/json"}),
        requests.get(f"{api.base_url}/v1/jobs", headers={"Authorization": f"Bearer {API_TOKEN}-nearly"}, timeout=10),
    ]
    assert [r.status_code for r in refused][:3] == [401, 401, 401]
    # A request line gunicorn refuses before the app sees it, on a real webhook URL.
    malformed = raw_exchange(stack, b"POST /webhooks/bfl/" + signing.webhook_token(SECRET_KEY, job["id"]).encode()
                             + b"\x80 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert malformed.startswith(b"HTTP/1.1 400 "), malformed[:80]
    # The signed delivery link fluxhook downloads from, read off its record while the (slowed) download
    # runs: the record drops BFL's URLs once the job ends.
    sim.settings(delivery_delay=1.0)
    sim.complete(job["bfl_id"])
    record = redis.Redis.from_url(stack.env["REDIS_URL"])
    kept = wait_until(lambda: record.hget(KEYS.job(job['id']), "result_url"), timeout=10,
                      message="the Ready callback to be recorded").decode()
    sample = Sealer((SECRET_KEY,)).open_text(kept)
    stored = api.wait_for(job["id"])
    assert stored["status"] == "stored", stored
    assert "sig=" in sample and "sig=" not in kept, kept
    image_url = stored["image"]["url"]
    assert requests.get(image_url, timeout=10).status_code == 200
    assert requests.get(image_url + "x", timeout=10).status_code == 401

    # A task submitted elsewhere: tracked, a static callback with BFL_WEBHOOK_SECRET, one refused.
    task = sim.http.post(f"{sim.url}/v1/flux-2-pro", json={"prompt": "[pending] hygiene tracked"},
                         headers={"x-key": SIMULATOR_KEY}, timeout=10).json()
    tracked = api.track(task["id"], polling_url=task["polling_url"]).json()
    sim.complete(task["id"])  # a static Ready is a hint: the job stores what BFL's poll then states
    ready = json.dumps(ready_payload(task["id"], serve_png(spy, "hygiene"))).encode()
    static_signature = hmac_hex(STATIC_SECRET, ready)
    sent_signatures.append(static_signature)
    assert requests.post(api.base_url + "/webhooks/bfl", data=ready, timeout=10,
                         headers={"X-Webhook-Secret": "wrong-" + STATIC_SECRET}).status_code == 401
    assert requests.post(api.base_url + "/webhooks/bfl", data=ready, timeout=10,
                         headers={"X-BFL-Signature": "sha256=" + static_signature}).status_code == 200
    tracked_stored = api.wait_for(tracked["id"])
    assert tracked_stored["status"] == "stored", tracked_stored
    wait_until(lambda: api.job(polled["id"])["attempts"]["polls"] >= 1, timeout=20, message="a fallback poll")
    last = second.get(f"/v1/jobs/{tracked['id']}")
    assert last.status_code == 200

    # Every line is flushed: the worker logged the stores and the poll, the web its last request.
    web_log, worker_log = stack.var_dir / "web.log", stack.var_dir / "worker.log"
    _wait_logged(worker_log, job["id"], tracked["id"], polled["id"], "image stored")
    _wait_logged(web_log, last.headers["X-Request-Id"], "callback refused")

    secrets = {
        "BFL API key": SIMULATOR_KEY,
        "bearer token": API_TOKEN,
        "second bearer token": SECOND_TOKEN,
        "SECRET_KEY": SECRET_KEY,
        "BFL_WEBHOOK_SECRET": STATIC_SECRET,
        "delivery link signature": parse_qs(urlsplit(sample).query)["sig"][0],
    }
    for name, job_id in (("job", job["id"]), ("other job", other["id"]), ("tracked job", tracked["id"]),
                         ("polled job", polled["id"])):
        secrets[f"webhook secret of the {name}"] = secret_of(job_id)
        secrets[f"webhook-URL token of the {name}"] = signing.webhook_token(SECRET_KEY, job_id)
    for name, sent in (("job", job), ("other job", other)):
        # The token in the URL fluxhook sent BFL (it names the job's model too).
        secrets[f"webhook-URL token sent for the {name}"] = sim.task(sent["bfl_id"])["webhook_url"].rsplit("/", 1)[1]
    for n, value in enumerate(sent_signatures):
        secrets[f"X-BFL-Signature #{n}"] = value
    for name, url in (("job", image_url), ("tracked job", tracked_stored["image"]["url"])):
        secrets[f"image-URL token of the {name}"] = parse_qs(urlsplit(url).query)["token"][0]

    # What anyone may read without a token says nothing secret either, nor what a metrics scraper reads.
    public = {path: requests.get(api.base_url + path, timeout=10).text for path in ("/healthz", "/readyz")}
    public["/metrics"] = api.get("/metrics").text
    exposed = [f"{name} in {path}" for path, text in public.items() for name, value in secrets.items() if value in text]
    assert exposed == []
    assert [response.text for response in refused if any(v in response.text for v in secrets.values())] == []

    logs = {path: path.read_text(errors="replace") for path in _log_files(stack, tmp_path_factory)}
    assert web_log in logs and worker_log in logs
    assert job["id"] in logs[web_log] and job["id"] in logs[worker_log]  # the right logs, and not empty
    leaks = [f"{name} in {path.name}: ...{text[max(0, text.find(value) - 150):text.find(value) + 60]}..."
             for path, text in logs.items() for name, value in secrets.items() if value in text]
    assert leaks == [], "\n".join(leaks)


def _every_value(connection: redis.Redis) -> bytes:
    """Every key of the database and everything it holds, read by its type (a DUMP may compress a value)."""
    read = {b"string": lambda k: [connection.get(k)], b"hash": lambda k: connection.hgetall(k).items(),
            b"list": lambda k: connection.lrange(k, 0, -1), b"set": connection.smembers,
            b"zset": lambda k: connection.zrange(k, 0, -1), b"stream": lambda k: connection.xrange(k)}
    found = []
    for key in connection.scan_iter(count=1000):
        found.append(key)
        found.append(repr(list(read.get(connection.type(key), lambda k: [])(key))).encode())
    return b"\n".join(found)


def _aof(connection: redis.Redis) -> bytes:
    home = Path(connection.config_get("dir")["dir"])
    folder = connection.config_get("appenddirname").get("appenddirname")  # Redis 7 keeps its AOF in parts
    files = sorted((home / folder).glob("*.aof*")) if folder else [home / connection.config_get("appendfilename")[
        "appendfilename"]]
    return b"".join(path.read_bytes() for path in files)


def test_no_delivery_links_signature_is_kept_in_redis_or_its_aof(api, sim, stack):
    connection = redis.Redis.from_url(stack.env["REDIS_URL"])
    sim.settings(delivery_delay=2.0)  # the link stays in the job's record while its download runs
    job = api.submit("[pending] sealed link")
    sim.complete(job["bfl_id"])
    kept = wait_until(lambda: connection.hget(KEYS.job(job["id"]), "result_url"), timeout=10,
                      message="the Ready callback to be recorded").decode()
    signature = parse_qs(urlsplit(Sealer((SECRET_KEY,)).open_text(kept)).query)["sig"][0]
    # A Ready callback for a task nobody tracks yet: only that the task was reported is kept, a bit.
    made_up = "made-up-signature-0123456789"
    body = json.dumps(ready_payload("untracked-sealed", f"https://delivery.example/a.png?sig={made_up}")).encode()
    assert requests.post(api.base_url + "/webhooks/bfl", data=body, timeout=10,
                         headers={"X-Webhook-Secret": STATIC_SECRET}).status_code == 202

    values = _every_value(connection)
    assert job["id"].encode() in values and signature.encode() not in values and made_up.encode() not in values
    # Redis writes its AOF every second: once it holds the job's record, it holds whatever was written with it.
    marks = KEYS.kept_marks("default", "").encode()
    aof = wait_until(lambda: (lambda text: text if marks in text else None)(_aof(connection)),
                     timeout=10, message="the AOF to hold the kept report")
    assert signature.encode() not in aof and made_up.encode() not in aof
    assert api.wait_for(job["id"])["status"] == "stored"
