"""The row of the jobs that named no end user in ``GET /v1/usage?group_by=end_user`` (``reports.without_end_user``
over ``reports.owner_totals``): an app key's day less what its end users counted, so the rows add up to its spend;
the admin tokens' day is the account's less every key's."""

from __future__ import annotations

from fluxhook.credits import accounting, reports

M = accounting.MICRO
# One day's usage counters: key_a made 4 jobs (one moderated, counted failed) spending 3,015 credits, key_b 1 job of
# 7 credits, the admin tokens 2 jobs of 1 credit each; the account's fields hold all of them.
DAY = {
    "flux-2-pro:jobs": 7, "flux-2-pro:stored": 5, "flux-2-pro:failed": 2, "flux-2-pro:credits": 3024 * M,
    "flux-2-pro@key_a:jobs": 4, "flux-2-pro@key_a:stored": 3, "flux-2-pro@key_a:failed": 1,
    "flux-2-pro@key_a:credits": 3015 * M, "flux-2-pro@key_b:jobs": 1, "flux-2-pro@key_b:stored": 1,
    "flux-2-pro@key_b:credits": 7 * M, "spent": 3024 * M, "spent@key_a": 3015 * M, "spent@key_b": 7 * M,
    "spent#default": 3024 * M,
}
# key_a's end users: two jobs of shopper-1 (one moderated) and one of shopper-2, 15 credits in all.
END_USERS = {"shopper-1": {"jobs": 2, "stored": 1, "moderated": 1, "credits": 10 * M},
             "shopper-2": {"jobs": 1, "stored": 1, "credits": 5 * M}}


def test_a_keys_jobs_without_an_end_user_are_its_day_less_its_end_users():
    totals = reports.owner_totals(DAY, "key_a")
    assert totals == {"jobs": 4, "stored": 3, "failed": 1, "canceled": 0, "credits": 3015 * M}
    rest = reports.without_end_user(totals, END_USERS)
    assert rest == {"end_user": None, "jobs": 1, "stored": 1, "failed": 0, "canceled": 0, "moderated": None,
                    "credits": 3000.0}
    named = sum(counts["credits"] for counts in END_USERS.values())
    assert accounting.to_micro(rest["credits"]) + named == DAY["spent@key_a"]


def test_another_keys_day_and_the_admin_tokens_are_their_own():
    assert reports.without_end_user(reports.owner_totals(DAY, "key_b"), {})["credits"] == 7.0
    admins = reports.owner_totals(DAY, None)
    assert admins == {"jobs": 2, "stored": 1, "failed": 1, "canceled": 0, "credits": 2 * M}


def test_no_row_when_every_job_named_an_end_user():
    totals = {"jobs": 3, "stored": 2, "failed": 1, "canceled": 0, "credits": 15 * M}
    assert reports.without_end_user(totals, END_USERS) is None
    assert reports.without_end_user(reports.owner_totals({}, "key_c"), {}) is None
