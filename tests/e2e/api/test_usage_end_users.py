"""``GET /v1/usage?group_by=end_user`` over real HTTP: the jobs that named no end user have a row of their own
(``end_user`` null), so a key's rows add up to its spend; another key's rows are its own."""

from __future__ import annotations

from key_helpers import make_key


def _ended(app, *end_users: str | None) -> None:
    ids = [app.submit(f"usage {n}", **({"end_user": e} if e else {}))["id"] for n, e in enumerate(end_users)]
    for job_id in ids:
        app.wait_for(job_id, timeout=30)


def _total(app, field: str) -> float:
    return round(sum(row[field] for row in app.get("/v1/usage").json()["days"]), 6)


def test_jobs_without_an_end_user_have_a_row_and_the_rows_add_up_to_the_keys_spend(api, sim):
    _, app = make_key(api)
    _, other = make_key(api)
    _ended(app, "e1", "e1", "e2", None, None)
    _ended(other, None, "e1")

    usage = app.get("/v1/usage?group_by=end_user").json()
    rows = {row["end_user"]: row for row in usage["days"]}
    assert {name: row["jobs"] for name, row in rows.items()} == {"e1": 2, "e2": 1, None: 2}
    assert rows[None]["moderated"] is None and rows[None]["stored"] == 2
    spent = app.get("/v1/usage").json()["spent_today"]
    assert spent > 0 and usage["total_credits"] == spent == _total(app, "credits")
    assert round(sum(row["credits"] for row in usage["days"]), 6) == spent
    # One end user asked for: its row alone.
    assert [row["end_user"] for row in app.get("/v1/usage?end_user=e1").json()["days"]] == ["e1"]

    theirs = other.get("/v1/usage?group_by=end_user").json()
    assert sorted((row["end_user"] or "", row["jobs"]) for row in theirs["days"]) == [("", 1), ("e1", 1)]
    assert theirs["total_credits"] == other.get("/v1/usage").json()["spent_today"]
