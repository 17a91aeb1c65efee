"""The dashboard at ``/`` over real HTTP: sign-in, the session cookie, CSRF, pages (the overview, the job list),
live JSON, thumbnails.

The browser itself is driven in ``test_dashboard_browser.py``; these tests check what a browser
relies on, with ``requests`` against the session stack.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import requests
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from PIL import Image
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job as RQJob
from rq.job import JobStatus

from conftest import API_TOKEN, SECRET_KEY, ready_payload
from devtools.processes import wait_until
from fluxhook.lifecycle.steps import timeline
from fluxhook.lifecycle.steps.enqueueing import download_task_name
from fluxhook.media import thumbnails
from fluxhook.store.jobs import JobStore
from fluxhook.store.keys import KEYS
from fluxhook.store.timeline import TIMELINE_CAP, TimelineStore
from helpers import csrf_of, rq_task_ids, sign_in

COOKIE = "fluxhook_session"


def session_data(cookie_value: str) -> dict:
    """What the signed session cookie holds (it is signed, not encrypted: anyone can read it)."""
    app = Flask("reader")
    app.secret_key = SECRET_KEY
    return dict(SecureCookieSessionInterface().get_signing_serializer(app).loads(cookie_value))


def storage_dir(stack) -> Path:
    return Path(stack.env["STORAGE_URL"].removeprefix("file://"))


def redis_of(stack):
    import redis

    return redis.Redis.from_url(stack.env["REDIS_URL"])


# -- signing in and out -------------------------------------------------------------------------

def test_pages_and_live_data_need_a_session(stack, api):
    job = api.submit("[pending] behind the session")
    base = stack.base_url
    for path in ("/", "/?range=30d", "/jobs", f"/jobs/{job['id']}", "/jobs?status=stored"):
        response = requests.get(base + path, allow_redirects=False, timeout=10)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/signin?next=")
    for path in ("/live/jobs", f"/live/jobs/{job['id']}", f"/jobs/{job['id']}/thumbnail"):
        response = requests.get(base + path, timeout=10)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "unauthorized"
    # A bearer token is for /v1; it does not open the dashboard.
    assert api.get("/live/jobs").status_code == 401


def test_sign_in_is_refused_with_a_bad_token(stack):
    http, answer = sign_in(stack.base_url, token="not-a-token-of-ours")
    assert answer.status_code == 401
    assert "not one of this service" in answer.text
    assert "not-a-token-of-ours" not in answer.text
    assert COOKIE not in http.cookies or "signed_in" not in session_data(http.cookies[COOKIE])
    assert http.get(stack.base_url + "/", allow_redirects=False, timeout=10).status_code == 302


def test_sign_in_needs_the_forms_csrf_token(stack):
    http = requests.Session()
    answer = http.post(f"{stack.base_url}/signin", data={"token": API_TOKEN}, allow_redirects=False, timeout=10)
    assert answer.status_code == 400
    assert http.get(stack.base_url + "/", allow_redirects=False, timeout=10).status_code == 302


def test_session_cookie_is_httponly_samesite_and_holds_no_token(stack):
    http, answer = sign_in(stack.base_url)
    assert answer.status_code == 303 and answer.headers["Location"] == "/"
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # PUBLIC_BASE_URL is http here; see the https case below
    value = http.cookies[COOKIE]
    data = session_data(value)
    assert data["signed_in"] is True and data["csrf"]
    assert API_TOKEN not in value and API_TOKEN not in repr(data)
    assert http.get(stack.base_url + "/", timeout=10).status_code == 200


def test_session_cookie_is_secure_when_served_over_https(stack):
    from fluxhook.core.config import Config
    from receiver import create_app

    app = create_app(Config.from_env({**stack.env, "PUBLIC_BASE_URL": "https://fluxhook.example"}))
    client = app.test_client()
    form = client.get("/signin")
    answer = client.post("/signin", data={"csrf_token": csrf_of(form.text), "token": API_TOKEN})
    assert answer.status_code == 303
    assert "Secure" in answer.headers["Set-Cookie"] and "HttpOnly" in answer.headers["Set-Cookie"]


def test_a_token_removed_from_api_tokens_signs_its_sessions_out(stack):
    from fluxhook.core.config import Config
    from receiver import create_app

    before = create_app(Config.from_env(stack.env)).test_client()
    form = before.get("/signin")
    assert before.post("/signin", data={"csrf_token": csrf_of(form.text), "token": API_TOKEN}).status_code == 303
    cookie = before.get_cookie(COOKIE).value

    after = create_app(Config.from_env({**stack.env, "API_TOKENS": "second-token-abcdef"})).test_client()
    after.set_cookie(COOKIE, cookie)
    assert after.get("/").status_code == 302


def test_sign_out_needs_the_sessions_csrf_token(stack, browser):
    base = stack.base_url
    page = browser.get(base + "/", timeout=10)
    token = csrf_of(page.text)
    # A cross-site form cannot know the token: without it, or with another, nothing happens.
    for data in ({}, {"csrf_token": "forged"}, {"csrf_token": token[:-1]}):
        refused = browser.post(base + "/signout", data=data, allow_redirects=False, timeout=10)
        assert refused.status_code == 400
        assert browser.get(base + "/", allow_redirects=False, timeout=10).status_code == 200
    done = browser.post(base + "/signout", data={"csrf_token": token}, allow_redirects=False, timeout=10)
    assert done.status_code == 303 and done.headers["Location"] == "/signin"
    assert browser.get(base + "/", allow_redirects=False, timeout=10).status_code == 302


def test_sign_in_returns_to_a_local_page_only(stack):
    for target, expected in (("/jobs/job_X", "/jobs/job_X"), ("/?status=stored", "/?status=stored"),
                             ("//evil.example/x", "/"), ("https://evil.example/", "/"), ("/\\evil.example", "/")):
        http = requests.Session()
        form = http.get(f"{stack.base_url}/signin", timeout=10)
        answer = http.post(f"{stack.base_url}/signin", allow_redirects=False, timeout=10,
                           data={"csrf_token": csrf_of(form.text), "token": API_TOKEN, "next": target})
        assert answer.status_code == 303 and answer.headers["Location"] == expected, target


# -- pages and live data ------------------------------------------------------------------------

def test_the_overview_is_the_first_page_drawn_as_inline_svg_under_the_csp(stack, api, browser):
    api.wait_for(api.submit("counted on the overview")["id"], "stored")
    base = stack.base_url
    # The worker writes its hourly counts every few seconds.
    wait_until(lambda: int(re.search(r'data-figure="stored">(\d+)<', browser.get(base + "/", timeout=10).text).group(1))
               >= 1, timeout=15, message="the job counted as stored")
    for span, unit in (("24h", "hour"), ("30d", "day")):
        page = browser.get(base + "/", params={"range": span}, timeout=10)
        assert page.status_code == 200 and "<h1>Overview</h1>" in page.text
        assert f'<div class="overview" data-range="{span}">' in page.text and f"Jobs per {unit} by outcome" in page.text
        assert page.text.count('<svg class="chart"') == 3  # jobs, latency, credits
        assert int(re.search(r'data-figure="stored">(\d+)<', page.text).group(1)) >= 1
        # No style attribute (style-src 'self' would drop it), no script of its own, nothing from elsewhere.
        policy = page.headers["Content-Security-Policy"]
        assert "style-src 'self'" in policy and "unsafe-inline" not in policy
        assert "style=" not in page.text and "<script" not in page.text and "https://" not in page.text
    assert browser.get(base + "/?range=1y", allow_redirects=False, timeout=10).headers["Location"] == "/"
    # A bookmark of the list from when it was at /: to /jobs with its filter, and no other query key.
    old = browser.get(base + "/?status=stored&endpoint=x&_external=1", allow_redirects=False, timeout=10)
    assert old.status_code == 302 and old.headers["Location"] == "/jobs?status=stored"
    assert 'href="/jobs"' in browser.get(base + "/", timeout=10).text  # the job list, one click away


def test_list_page_filters_by_status_newest_first(stack, api, browser):
    stored = api.wait_for(api.submit("listed and stored")["id"], "stored")
    pending = api.submit("[pending] listed and waiting")
    base = stack.base_url

    page = browser.get(base + "/jobs", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert page.text.index(pending["id"]) < page.text.index(stored["id"])  # newest first
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert "<script>" not in page.text and "https://" not in page.text  # no inline script, nothing from a CDN
    assert page.headers["Cache-Control"] == "no-store"

    only_stored = browser.get(base + "/jobs?status=stored", timeout=10).text
    assert stored["id"] in only_stored and pending["id"] not in only_stored
    unknown = browser.get(base + "/jobs?status=no-such-status", allow_redirects=False, timeout=10)
    assert unknown.status_code == 302 and unknown.headers["Location"] == "/jobs"
    # The list's links from when it was the root page lead to it still.
    old = browser.get(base + "/?status=stored", allow_redirects=False, timeout=10)
    assert old.status_code == 302 and old.headers["Location"] == "/jobs?status=stored"

    live = browser.get(base + "/live/jobs", params={"status": "submitted"}, timeout=10).json()
    row = next(j for j in live["jobs"] if j["id"] == pending["id"])
    assert row["status"] == "submitted" and row["model"] == "flux-2-pro" and row["href"] == f"/jobs/{pending['id']}"
    assert all(j["status"] == "submitted" for j in live["jobs"])
    assert live["counts"]["submitted"] >= 1 and live["counts"]["all"] >= live["counts"]["submitted"]
    assert stored["id"] not in {j["id"] for j in live["jobs"]}


def test_the_list_filters_by_model_with_the_status(stack, api, sim, browser):
    video = api.post("/v1/jobs", json={"model": "flux-2-max", "input": {"prompt": "[pending] by model"}}).json()
    other = api.submit("[pending] another model")
    base = stack.base_url
    live = browser.get(base + "/live/jobs", params={"model": "flux-2-max", "status": "submitted"}, timeout=10).json()
    ids = {j["id"] for j in live["jobs"]}
    assert video["id"] in ids and other["id"] not in ids
    assert all(j["model"] == "flux-2-max" and j["status"] == "submitted" for j in live["jobs"])
    page = browser.get(base + "/jobs", params={"model": "flux-2-max"}, timeout=10).text
    assert "Jobs of flux-2-max" in page and 'href="/jobs?model=flux-2-max"' in page
    assert video["id"] in page and other["id"] not in page
    # A model that cannot be one: the whole list again, not an error page.
    assert browser.get(base + "/jobs", params={"model": "../x"}, allow_redirects=False, timeout=10).status_code == 302


def test_list_pages_with_the_cursor(stack, api, browser):
    live = lambda **params: browser.get(stack.base_url + "/live/jobs", params=params, timeout=10).json()  # noqa: E731
    for n in range(max(0, 26 - live()["counts"]["all"])):
        api.submit(f"paged {n}")
    first = live()
    assert len(first["jobs"]) == 25 and first["next_cursor"] == first["jobs"][-1]["id"]
    second = live(cursor=first["next_cursor"])
    assert second["jobs"] and second["jobs"][0]["id"] < first["jobs"][-1]["id"]
    assert not {j["id"] for j in first["jobs"]} & {j["id"] for j in second["jobs"]}
    page = browser.get(stack.base_url + "/jobs", timeout=10).text
    assert f'href="/jobs?cursor={first["next_cursor"]}"' in page


def test_job_page_shows_image_metadata_error_and_timeline(stack, api, sim, browser):
    job = api.wait_for(api.submit("a documented job", metadata={"user": "<b>ann</b>"})["id"], "stored")
    base = stack.base_url

    page = browser.get(f"{base}/jobs/{job['id']}", timeout=10)
    assert page.status_code == 200
    assert "&lt;b&gt;ann&lt;/b&gt;" in page.text and "<b>ann</b>" not in page.text  # escaped, never markup
    image_url = re.search(r'<img src="(/v1/jobs/[^"]+)"', page.text).group(1).replace("&amp;", "&")
    served = requests.get(base + image_url, timeout=10)  # the signed link: no bearer token, no session needed
    assert served.status_code == 200 and served.content == sim.image_bytes(job["bfl_id"])

    detail = browser.get(f"{base}/live/jobs/{job['id']}", timeout=10).json()["job"]
    assert detail["status"] == "stored" and detail["source"] == "webhook" and detail["bfl_id"] == job["bfl_id"]
    kinds = [entry["kind"] for entry in detail["timeline"]]
    assert kinds[0] == "created" and kinds[-1] == "status"
    for kind in ("submission", "callback", "bfl", "status"):
        assert kind in kinds, (kind, kinds)
    said = [(entry["title"], entry["text"]) for entry in detail["timeline"]]
    assert ("Sent to BFL", f"task {job['bfl_id']} (account {job['account']})") in said
    assert ("BFL called back", "the result is ready; downloading it") in said
    # One stored moment: the download that stored the file is told in the job's last row, with its duration.
    assert "Downloaded and stored" not in [title for title, _ in said]
    assert said[-1][0] == "Job stored" and re.match(r"downloaded and stored in \d", said[-1][1]), said[-1]
    times = [entry["at"] for entry in detail["timeline"]]
    assert times == sorted(times)

    missing = browser.get(f"{base}/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV", timeout=10)
    assert missing.status_code == 404 and "No such job" in missing.text
    assert browser.get(f"{base}/live/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV", timeout=10).status_code == 404


def test_the_list_and_the_job_page_show_prompt_seed_and_cost(stack, api, sim, browser):
    prompt = "a lighthouse at dusk, " + "waves " * 30
    job = api.wait_for(api.submit(prompt)["id"], "stored")
    assert job["seed"] is not None and job["cost"]["credits"] > 0  # what the simulator states
    base = stack.base_url

    row = next(j for j in browser.get(base + "/live/jobs", timeout=10).json()["jobs"] if j["id"] == job["id"])
    assert row["cost"] == f"{job['cost']['credits']:g} credits"
    assert row["prompt"].startswith("a lighthouse at dusk") and row["prompt"].endswith("…") and len(row["prompt"]) == 80
    listing = browser.get(base + "/jobs", timeout=10).text
    assert "<th class=\"cost\" title=\"BFL's price of the task\">Cost</th>" in listing.replace("&#39;", "'")

    detail = browser.get(f"{base}/live/jobs/{job['id']}", timeout=10).json()["job"]
    assert detail["prompt"] == job["prompt"] == prompt
    assert detail["seed"] == str(job["seed"])
    assert detail["cost_detail"].startswith(f"{job['cost']['credits']:g} credits")
    assert f"{job['cost']['output_mp']:g} MP out" in detail["cost_detail"]
    page = browser.get(f"{base}/jobs/{job['id']}", timeout=10).text
    assert 'data-field="seed">' + str(job["seed"]) in page and "a lighthouse at dusk" in page


def test_timeline_shows_failures_refused_callbacks_and_polls(stack, api, sim, browser):
    failed = api.submit("[pending] refused, then failed")
    assert api.callback(failed["id"], ready_payload(failed["bfl_id"], "https://x.invalid/a.png"),
                        secret="not-the-secret").status_code == 401
    sim.complete(failed["bfl_id"], "error")
    api.wait_for(failed["id"], "failed")
    detail = browser.get(f"{stack.base_url}/live/jobs/{failed['id']}", timeout=10).json()["job"]
    entries = {(e["title"], e["text"]) for e in detail["timeline"]}
    assert ("Callback refused", "it was not signed with this job's secret") in entries
    assert any(title == "Job failed" for title, _ in entries)
    assert ("Asked BFL", "the task failed") in entries  # the failure was confirmed by a poll
    assert detail["error_code"] == "bfl_error" and detail["error_message"]

    polled = api.wait_for(api.submit("[drop] found by polling")["id"], "stored", timeout=20)
    detail = browser.get(f"{stack.base_url}/live/jobs/{polled['id']}", timeout=10).json()["job"]
    assert detail["source"] == "poll"
    assert ("Asked BFL", "the result is ready") in [(e["title"], e["text"]) for e in detail["timeline"]]


# -- thumbnails ---------------------------------------------------------------------------------

def wait_download_task(stack, job_id: str) -> None:
    """Until the job's download task, which makes its thumbnail once the job is stored, has ended (RQ keeps no
    record of one that succeeded)."""
    connection = redis_of(stack)

    def ended() -> bool:
        try:
            return all(RQJob.fetch(task, connection=connection).get_status() == JobStatus.FAILED
                       for task in rq_task_ids(connection, download_task_name(job_id)))
        except (NoSuchJobError, InvalidJobOperation):  # gone before it was read, or between its reads
            return True

    wait_until(ended, timeout=20, message=f"the download task of {job_id}")


def test_thumbnail_is_a_real_small_image_made_on_store(stack, api, sim, browser):
    sim.settings(image_bytes=180_000)  # a noisy PNG of about 60 000 pixels: larger than a thumbnail
    job = api.wait_for(api.submit("a large image")["id"], "stored")
    wait_download_task(stack, job["id"])
    width, height = job["image"]["width"], job["image"]["height"]
    assert max(width, height) > thumbnails.MAX_SIDE
    assert "thumbnail" not in repr(job)  # the API's job object is unchanged

    row = next(j for j in browser.get(stack.base_url + "/live/jobs", timeout=10).json()["jobs"] if j["id"] == job["id"])
    response = browser.get(stack.base_url + row["thumbnail"], timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/webp"
    assert len(response.content) < job["image"]["size"] / 3
    with Image.open(io.BytesIO(response.content)) as thumb:
        assert thumb.format == "WEBP"
        assert max(thumb.size) == thumbnails.MAX_SIDE
        assert abs(thumb.width / thumb.height - width / height) < 0.02
    assert (storage_dir(stack) / f"{job['id']}-thumb.webp").read_bytes() == response.content
    assert requests.get(stack.base_url + row["thumbnail"], timeout=10).status_code == 401  # needs the session


def test_small_images_are_not_enlarged(stack, api, browser):
    job = api.wait_for(api.submit("a small image")["id"], "stored")
    wait_download_task(stack, job["id"])
    response = browser.get(f"{stack.base_url}/jobs/{job['id']}/thumbnail", timeout=10)
    with Image.open(io.BytesIO(response.content)) as thumb:
        assert thumb.size == (job["image"]["width"], job["image"]["height"])


def test_a_thumbnail_that_cannot_be_made_never_fails_the_job(stack, api, spy, browser):
    # A PNG whose header is fine (so it is accepted as an image) but whose pixel data is broken.
    out = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 30, 30)).save(out, "PNG")
    data = bytearray(out.getvalue())
    start = data.index(b"IDAT") + 8
    data[start:start + 40] = bytes(40)
    job = api.submit("[pending] broken pixels")
    url = spy.route("/broken.png", body=bytes(data), headers={"Content-Type": "image/png"})
    assert api.callback(job["id"], ready_payload(job["bfl_id"], url)).status_code == 200
    done = api.wait_for(job["id"])
    assert done["status"] == "stored" and done["image"]["width"] == 300
    wait_download_task(stack, job["id"])
    assert browser.get(f"{stack.base_url}/jobs/{job['id']}/thumbnail", timeout=10).status_code == 404
    assert not (storage_dir(stack) / thumbnails.key_for(job["id"])).exists()
    row = next(j for j in browser.get(stack.base_url + "/live/jobs", timeout=10).json()["jobs"] if j["id"] == job["id"])
    assert row["thumbnail"] is None


def test_deleting_a_job_removes_its_thumbnail_and_timeline(stack, api):
    job = api.wait_for(api.submit("deleted with its thumbnail")["id"], "stored")
    wait_download_task(stack, job["id"])
    thumb = storage_dir(stack) / thumbnails.key_for(job["id"])
    connection = redis_of(stack)
    assert thumb.exists()
    assert JobStore(connection).get(job["id"]).thumbnail_key == thumb.name
    assert timeline.recent(TimelineStore(connection), job["id"])
    assert api.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert not thumb.exists() and not (storage_dir(stack) / f"{job['id']}.png").exists()
    assert timeline.recent(TimelineStore(connection), job["id"]) == []


def test_the_timeline_is_capped_and_expires_with_the_job(stack, api):
    job = api.submit("[pending] a long story")
    connection = redis_of(stack)
    wait_until(lambda: timeline.recent(TimelineStore(connection), job["id"]), message="the submission event")
    ttl = connection.ttl(KEYS.timeline(job["id"]))
    assert 30 * 86400 < ttl <= 32 * 86400  # JOB_RETENTION_DAYS (30) + 2, like the record
    for _ in range(TIMELINE_CAP + 20):
        assert api.callback(job["id"], {"id": job["bfl_id"], "status": "Pending"}).status_code == 200
    assert connection.llen(KEYS.timeline(job["id"])) == TIMELINE_CAP


def test_sign_out_ends_the_session_for_every_copy_of_the_cookie(stack, browser):
    base = stack.base_url
    copied = browser.cookies.get(COOKIE)
    assert session_data(copied).get("sid")
    thief = requests.Session()
    thief.cookies.set(COOKIE, copied)
    assert thief.get(base + "/", allow_redirects=False, timeout=10).status_code == 200
    token = csrf_of(browser.get(base + "/", timeout=10).text)
    assert browser.post(base + "/signout", data={"csrf_token": token}, allow_redirects=False,
                        timeout=10).status_code == 303
    # The copy taken before sign-out is still validly signed, and refused on every web process.
    for _ in range(4):
        assert thief.get(base + "/", allow_redirects=False, timeout=10).status_code == 302
        assert thief.get(base + "/live/jobs", allow_redirects=False, timeout=10).status_code == 401
    # Signing in again opens a new session, which works.
    again, answer = sign_in(base)
    assert answer.status_code == 303
    assert again.get(base + "/", allow_redirects=False, timeout=10).status_code == 200
    assert session_data(again.cookies.get(COOKIE))["sid"] != session_data(copied)["sid"]
