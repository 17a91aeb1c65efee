"""The dashboard's notifications over HTTP, as a signed-in browser sends its forms: a job's page lists its messages
and attempts, the Deliveries page lists failed and disabled ones with a replay button and enables a disabled target;
every form needs the session's CSRF token."""

from __future__ import annotations

import re

import requests

from devtools.processes import wait_until
from helpers import csrf_of, sign_in
from key_helpers import make_key


def _state(api, job_id: str, state: str) -> dict:
    return wait_until(lambda: next((m for m in api.get(f"/v1/jobs/{job_id}/deliveries").json()["deliveries"]
                                    if m["state"] == state), None), timeout=30, message=f"a {state} message")


def test_a_failed_delivery_is_listed_and_replayed_from_the_dashboard(napi, sim, notify_stack, fourth_hooks):
    fourth_hooks.statuses["/dash"] = 404
    job = napi.submit("a fox for the deliveries page", notify_url=fourth_hooks.url("/dash"))
    failed = _state(napi, job["id"], "failed")
    http, _ = sign_in(notify_stack.base_url)

    page = http.get(f"{notify_stack.base_url}/jobs/{job['id']}", timeout=10)
    assert page.status_code == 200
    item = re.search(rf'<li data-message-id="{failed["id"]}" data-state="failed">.*?</li>\s*</ol>', page.text, re.S)
    assert item and "job.ended" in item.group(0) and "HTTP 404" in item.group(0)

    listing = http.get(f"{notify_stack.base_url}/deliveries", timeout=10)
    assert listing.status_code == 200
    failed_table = listing.text.split('id="failed"', 1)[1].split("</table>", 1)[0]
    assert f'data-message-id="{failed["id"]}"' in failed_table and "HTTP 404" in failed_table

    replay = f"{notify_stack.base_url}/deliveries/{failed['id']}/replay"
    assert http.post(replay, data={}, allow_redirects=False, timeout=10).status_code == 400  # no CSRF token
    assert len(fourth_hooks.for_job(job["id"])) == 1
    fourth_hooks.statuses["/dash"] = 200
    answer = http.post(replay, data={"csrf_token": csrf_of(listing.text), "job": job["id"]}, allow_redirects=False,
                       timeout=10)
    assert answer.status_code == 303 and answer.headers["Location"].endswith(f"/jobs/{job['id']}#deliveries")
    _state(napi, job["id"], "delivered")
    assert [d.headers["webhook-id"] for d in fourth_hooks.for_job(job["id"])] == [failed["id"]] * 2


def test_a_disabled_target_is_enabled_from_the_dashboard(napi, sim, notify_stack, third_hooks):
    key, app = make_key(napi, notify_url=third_hooks.url("/dash-gone"))
    third_hooks.statuses["/dash-gone"] = 410
    job = app.submit("a fox for an app that left, seen on the dashboard")
    disabled = _state(app, job["id"], "disabled")
    http, _ = sign_in(notify_stack.base_url)
    listing = http.get(f"{notify_stack.base_url}/deliveries", timeout=10).text
    assert f'data-owner="{key["id"]}"' in listing
    assert f'data-message-id="{disabled["id"]}"' in listing.split('id="disabled"', 1)[1]

    enable = f"{notify_stack.base_url}/deliveries/enable/{key['id']}"
    assert http.post(enable, data={}, allow_redirects=False, timeout=10).status_code == 400
    answer = http.post(enable, data={"csrf_token": csrf_of(listing)}, allow_redirects=False, timeout=10)
    assert answer.status_code == 303 and "enabled=1" in answer.headers["Location"]
    assert f'data-owner="{key["id"]}"' not in http.get(f"{notify_stack.base_url}/deliveries", timeout=10).text
    # Signed out, the page is not shown.
    signed_out = requests.get(f"{notify_stack.base_url}/deliveries", allow_redirects=False, timeout=10)
    assert signed_out.status_code != 200 and disabled["id"] not in signed_out.text


def test_a_key_made_on_the_dashboard_shows_its_notification_secret_once(napi, notify_stack):
    http, _ = sign_in(notify_stack.base_url)
    page = http.get(f"{notify_stack.base_url}/keys", timeout=10)
    made = http.post(f"{notify_stack.base_url}/keys", data={"csrf_token": csrf_of(page.text), "name": "dash-notified"},
                     timeout=10)
    assert made.status_code == 201
    secret = re.search(r'<code class="secret" id="notify-secret">(whsec_[^<]+)</code>', made.text).group(1)
    key = next(k for k in napi.get("/v1/keys").json()["keys"] if k["name"] == "dash-notified")
    assert secret not in http.get(f"{notify_stack.base_url}/keys", timeout=10).text  # shown this once
    rotated = napi.post(f"/v1/keys/{key['id']}/notify_secret").json()["notify_secret"]
    assert rotated != secret
