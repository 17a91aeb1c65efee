"""A key's requests_per_minute counts what it says, accepted submissions and tracks: a request refused
for any other reason, on any route, counts nothing. Over real HTTP against the session stack."""

from __future__ import annotations

from devtools.processes import wait_until
from helpers import assert_error
from key_helpers import make_key

PROMPT = {"prompt": "[pending] counted"}


def _refusals(app) -> list[int]:
    """One of each kind of refusal an app key can meet on the submitting and tracking routes; their statuses."""
    return [
        app.post("/v1/jobs", json={"model": "flux-2-max", "input": PROMPT}).status_code,  # not one of its models
        app.post("/v1/jobs", json={"model": "flux-2-pro", "input": PROMPT}).status_code,  # its daily_credits
        app.post("/v1/flux-2-pro", json=PROMPT).status_code,  # the same, on the BFL-compatible route
        app.post("/v1/jobs", json={"model": "flux-2-pro"}).status_code,  # no input
        app.post("/v1/flux-2-pro", json={}).status_code,  # BFL's 422 for a missing prompt
        app.post("/v1/jobs", json={"model": "flux-2-pro", "input": PROMPT, "account": "nowhere"}).status_code,
        app.post("/v1/jobs/track", json={}).status_code,  # a track naming no task
    ]


def _answers_the_balance(answer) -> bool:
    return answer.status_code == 503 or "Last-Modified" in answer.headers


def _post(app, body: dict) -> int:
    return app.post("/v1/jobs", json={"model": "flux-2-pro", "input": body}).status_code


def test_no_kind_of_refusal_spends_the_keys_minute(api):
    created, app = make_key(api, requests_per_minute=3, models=["flux-2-pro"], daily_credits=1)
    first = app.post("/v1/jobs", json={"model": "flux-2-pro", "input": PROMPT})
    assert first.status_code == 202
    # Once BFL has stated its price, the key's day is spent: what follows is refused for it.
    wait_until(lambda: app.get(f"/v1/jobs/{first.json()['id']}").json()["status"] == "submitted", timeout=30)

    refused = _refusals(app) + _refusals(app)
    assert api.request("PATCH", f"/v1/keys/{created['id']}", json={"daily_credits": None}).status_code == 200
    # Every web process sees the change within a second: GET /v1/credits says when (it counts nothing), answering
    # no longer with the key's day but with the accounts' balance, dated by its reading's Last-Modified (whatever an
    # earlier test of the session left the balance at).
    wait_until(lambda: _answers_the_balance(app.get("/v1/credits")), timeout=10)
    # Once the key may spend again: bodies BFL's schema refuses (fluxhook refuses them first, as BFL would).
    refused += [_post(app, dict(PROMPT, output_format="gif")), _post(app, dict(PROMPT, prompt_upsampling="x")),
                _post(app, dict(PROMPT, seed="x")), app.post("/v1/flux-2-pro", json={"prompt": ""}).status_code]
    accepted = [app.post("/v1/jobs", json={"model": "flux-2-pro", "input": PROMPT}) for _ in range(3)]

    assert refused == [403, 402, 402, 400, 422, 400, 400] * 2 + [400, 400, 400, 422]
    assert [a.status_code for a in accepted] == [202, 202, 429]
    assert_error(accepted[2], 429, "rate_limited")
