"""``GET /v1/jobs`` filters and strict input over HTTP against the Procfile's processes: each filter, pages
under filters, two app keys searching the same words, and ``unknown_field`` on both doors of ``/v1/jobs``.
The rules themselves: tests/unit/core/test_job_filters.py; the store: tests/unit/store/test_jobs_filters.py."""

from __future__ import annotations

import time
import uuid

import pytest

from conftest import API
from devtools.processes import wait_until
from helpers import assert_error, job_id_pages
from key_helpers import make_key


def _tag() -> str:
    return f"zq{uuid.uuid4().hex[:10]}"


def _ids(api: API, **params) -> list[str]:
    response = api.get("/v1/jobs", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return [job["id"] for job in response.json()["jobs"]]


def _newest(api: API) -> list[str]:
    return _ids(api, limit=20)


@pytest.mark.parametrize(("body", "named", "says"), [
    ({"model": "flux-2-pro", "input": {"prompt": "x"}, "deadline": "5m"}, "deadline", "Cancel-After"),
    ({"model": "flux-2-pro", "prompt": "a red fox"}, "prompt", "BFL's request fields go under 'input'"),
    ({"model": "flux-2-pro", "input": {"prompt": "x"}, "webhook_url": "https://x.example/"}, "webhook_url",
     "notify_url"),
    ({"model": "flux-2-pro", "input": {"prompt": "x"}, "Metadata": {}}, "Metadata", "POST /v1/jobs takes model"),
])
def test_an_unknown_field_of_a_submission_is_named_and_creates_nothing(api, sim, body, named, says):
    before, sent = _newest(api), sim.stats()["submitted"]
    error = assert_error(api.post("/v1/jobs", json=body), 400, "unknown_field")
    assert error["message"].startswith(f"unknown field '{named}': ") and says in error["message"]
    assert _newest(api) == before and sim.stats()["submitted"] == sent


def test_an_unknown_field_of_a_tracked_task_is_named_and_creates_nothing(api):
    bfl_id = f"strict-{uuid.uuid4().hex[:8]}"
    error = assert_error(api.post("/v1/jobs/track", json={"bfl_id": bfl_id, "deadline": "5m"}), 400, "unknown_field")
    assert error["message"].startswith("unknown field 'deadline': ") and "POST /v1/jobs/track takes bfl_id" in error["message"]
    assert api.track(bfl_id).status_code == 201  # nothing was made of the refused one: this one is new


@pytest.mark.parametrize("params", [{"prompt": "lighthouse"}, {"search": "x"}, {"status": "stored", "page": "2"}])
def test_an_unknown_query_parameter_is_named(api, params):
    name = list(params)[-1]
    error = assert_error(api.get("/v1/jobs", params=params), 400, "unknown_field")
    assert error["message"].startswith(f"unknown query parameter '{name}': ")


@pytest.mark.parametrize("params", [{"from": "yesterday"}, {"to": "2026-13-01"}, {"from": "2026-11-22", "to": "2026-11-21"},
                                    {"q": "x" * 201}, {"account": "Not An Account"}, {"status": "stored", "limit": "0"}])
def test_bad_filter_values_are_refused(api, params):
    assert_error(api.get("/v1/jobs", params=params), 400, "invalid_request")


def test_q_finds_prompts_in_any_case_with_the_other_filters(api, sim):
    tag = _tag()
    fox = api.submit(f"[pending] A red FOX {tag}")["id"]
    lighthouse = api.submit(f"[pending] Lighthouse {tag.upper()} at dusk", model="flux-2-max")["id"]
    stored = api.submit(f"a stored picture {tag}")["id"]
    assert api.wait_for(stored, "stored")["status"] == "stored"
    assert _ids(api, q=tag) == [stored, lighthouse, fox]
    assert _ids(api, q=f"lighthouse {tag}") == [lighthouse]  # case and all
    assert _ids(api, q=tag, model="flux-2-max") == [lighthouse]
    assert _ids(api, q=tag, status="stored") == [stored]
    assert _ids(api, q=tag, status="submitted") == [lighthouse, fox]
    assert _ids(api, q=tag, account="default") == [stored, lighthouse, fox]
    assert _ids(api, q=tag, account="elsewhere") == []
    assert _ids(api, q=_tag()) == []


def test_from_and_to_bound_created_at(api, sim):
    tag = _tag()
    first = api.submit(f"[pending] early {tag}")
    wait_until(lambda: time.time() >= _epoch(first["created_at"]) + 1, message="the next second")
    second = api.submit(f"[pending] late {tag}")
    assert first["created_at"] < second["created_at"]
    assert _ids(api, q=tag, **{"from": second["created_at"]}) == [second["id"]]
    assert _ids(api, q=tag, to=second["created_at"]) == [first["id"]]  # 'to' is the first instant left out
    assert _ids(api, q=tag, **{"from": first["created_at"], "to": second["created_at"]}) == [first["id"]]
    day = first["created_at"][:10]
    assert set(_ids(api, q=tag, **{"from": day, "to": second["created_at"][:10]})) == {first["id"], second["id"]}


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_pages_under_filters_hold_every_match_once(api, sim):
    tag = _tag()
    made = [api.submit(f"[pending] paged {tag} {n}", model=("flux-2-pro", "flux-2-max")[n % 2])["id"] for n in range(7)]
    assert job_id_pages(api, q=tag, limit=3) == [made[::-1][:3], made[::-1][3:6], made[::-1][6:]]
    of_max = [job_id for n, job_id in enumerate(made) if n % 2][::-1]
    assert sum(job_id_pages(api, q=tag, model="flux-2-max", status="submitted", limit=2), []) == of_max
    assert sum(job_id_pages(api, q=tag, limit=1, **{"from": "2000-01-01"}), []) == made[::-1]


def test_two_keys_search_the_same_words_and_find_only_their_own(api, sim):
    tag = _tag()
    created_a, a = make_key(api, name="search-a")
    created_b, b = make_key(api, name="search-b")
    mine = a.submit(f"[pending] secret lighthouse {tag}")["id"]
    theirs = b.submit(f"[pending] secret lighthouse {tag}")["id"]
    # The attack: A searches B's words, names B's key, or both; it finds its own job or nothing.
    assert _ids(a, q=tag) == [mine]
    assert _ids(a, q=tag, key_id=created_b["id"]) == []
    assert _ids(a, key_id=created_b["id"]) == []
    assert _ids(a, q=tag, account="default") == [mine]
    # What B sees, and the admin.
    assert _ids(b, q=tag) == [theirs]
    assert _ids(api, q=tag) == [theirs, mine]
    assert _ids(api, q=tag, key_id=created_a["id"]) == [mine]
