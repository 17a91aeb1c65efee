"""The job list's filters in the store (fluxhook/store/jobs.py list, lua/job_prompts.lua): each alone, every
combination paged to the end against the same jobs filtered by hand, the prompt search's window, and an app key's
jobs kept to it. Over HTTP: tests/e2e/jobs/test_job_filters.py."""

from __future__ import annotations

import itertools
import random

import pytest

import fluxhook.store.jobs as store_jobs
from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.job_filters import JobFilter, prompt_holds
from fluxhook.store.keys import KEYS

T0 = 1_790_000_000.0  # 2026-09-21
KEY_A, KEY_B = "key_aaaaaaaaaaaaaaaa", "key_bbbbbbbbbbbbbbbb"


def _make(store, at: float, prompt: str | None = "a red fox", *, status: str = st.SUBMITTED,
          model: str | None = "flux-2-pro", key_id: str | None = None, account: str | None = "default") -> Job:
    job = Job(id=new_job_id(at), status=status, model=model, key_id=key_id, account=account, prompt=prompt,
              bfl_id=new_job_id(), created_at=at, updated_at=at)
    assert store.create(job)[1]
    return job


def _all(store, filters: JobFilter, limit: int = 100) -> list[str]:
    """Every page to the end: the ids in order, each page's cursor followed."""
    ids, cursor = [], None
    for _ in range(1000):
        jobs, cursor = store.list(filters, limit=limit, cursor=cursor)
        assert len(jobs) <= limit
        ids += [job.id for job in jobs]
        if cursor is None:
            return ids
    raise AssertionError("the pages never ended")


def test_account_and_prompt_filters_read_the_records(store):
    fox = _make(store, T0, "A Red FOX in snow", account="eu")
    lighthouse = _make(store, T0 + 1, "lighthouse at dusk", account="us")
    none = _make(store, T0 + 2, None, account=None)  # a tracked task: no prompt, no account yet
    assert _all(store, JobFilter(account="eu")) == [fox.id]
    assert _all(store, JobFilter(account="us")) == [lighthouse.id]
    assert _all(store, JobFilter(text="red fox")) == [fox.id]
    assert _all(store, JobFilter(text="LIGHTHOUSE")) == [lighthouse.id]
    assert _all(store, JobFilter(text="fox", account="us")) == []
    assert _all(store, JobFilter(text="nothing like it")) == []
    assert _all(store, JobFilter()) == [none.id, lighthouse.id, fox.id]


def test_a_prompt_is_searched_whole_across_its_pieces_and_in_any_script(store):
    # A prompt is kept in pieces of 64 bytes (store/records.py); the script reads its first 8 at once, then the rest.
    long = "word " * 300 + "needle in the haystack " + "tail " * 50
    far = _make(store, T0, long)
    across = _make(store, T0 + 1, "x" * 62 + "SPLIT here")  # 'split' straddles the first two pieces
    accents = _make(store, T0 + 2, "Café ÉCLAIR au chocolat, Straße")
    assert _all(store, JobFilter(text="needle in the")) == [far.id]
    assert _all(store, JobFilter(text="xsplit h")) == [across.id]
    assert _all(store, JobFilter(text="éclair")) == [accents.id]
    assert _all(store, JobFilter(text="STRASSE")) == [accents.id]
    # The script leaves out only ASCII prompts without an ASCII text: one whose letters fold into ASCII is checked.
    kelvin = _make(store, T0 + 3, "\u212aelvin scale")  # KELVIN SIGN folds to 'k'
    assert _all(store, JobFilter(text="kelvin")) == [kelvin.id]
    assert store.get(far.id).prompt == long[:2000]


def test_from_and_to_bound_the_creation_time(store):
    jobs = [_make(store, T0 + 60 * n) for n in range(6)]
    assert _all(store, JobFilter(since=T0 + 120)) == [job.id for job in jobs[2:]][::-1]
    assert _all(store, JobFilter(until=T0 + 120)) == [job.id for job in jobs[:2]][::-1]  # 'to' is left out
    assert _all(store, JobFilter(since=T0 + 60, until=T0 + 180.5)) == [jobs[3].id, jobs[2].id, jobs[1].id]
    assert _all(store, JobFilter(since=T0 + 1000)) == [] and _all(store, JobFilter(until=T0 - 1)) == []
    # With a cursor, a page continues below it and stays inside the bounds.
    first, cursor = store.list(JobFilter(since=T0 + 60, until=T0 + 300), limit=2)
    assert [job.id for job in first] == [jobs[4].id, jobs[3].id] and cursor == jobs[3].id
    assert [job.id for job in store.list(JobFilter(since=T0 + 60, until=T0 + 300), limit=5, cursor=cursor)[0]] == [
        jobs[2].id, jobs[1].id]


def test_every_combination_pages_to_the_same_jobs_as_filtering_by_hand(store, monkeypatch):
    # Small read bounds, so pages stop part way (fewer than `limit` jobs, with a cursor) and must continue right.
    monkeypatch.setattr(store_jobs, "RECORDS_READ", 9)
    monkeypatch.setattr(store_jobs, "RECORDS_BATCH", 4)
    monkeypatch.setattr(store_jobs, "BOTH_FILTERS_READ", 9)
    monkeypatch.setattr(store_jobs, "BOTH_FILTERS_BATCH", 4)
    rng = random.Random(52)
    made = []
    for n in range(90):
        job = _make(store, T0 + n, rng.choice(["a Lighthouse", "red fox", "LIGHTHOUSE keeper", None]),
                    status=rng.choice([st.SUBMITTED, st.QUEUED]), model=rng.choice(["flux-2-pro", "flux-2-max"]),
                    key_id=rng.choice([KEY_A, KEY_B, None]), account=rng.choice(["eu", "us", None]))
        made.append(job)
    newest_first = made[::-1]
    choices = {"status": [None, st.QUEUED], "model": [None, "flux-2-max"], "key_id": [None, KEY_A],
               "account": [None, "eu"], "text": [None, "lighthouse"], "since": [None, T0 + 20],
               "until": [None, T0 + 70]}
    for values in itertools.product(*choices.values()):
        filters = JobFilter(**dict(zip(choices, values, strict=True)))
        expected = [job.id for job in newest_first if _admits(filters, job)]
        for limit in (1, 4, 100):
            assert _all(store, filters, limit) == expected, (filters, limit)


def _admits(filters: JobFilter, job: Job) -> bool:
    return all((
        filters.status in (None, job.status), filters.model in (None, job.model),
        filters.key_id in (None, job.key_id), filters.account in (None, job.account),
        filters.text is None or prompt_holds(job.prompt, filters.text),
        filters.since is None or job.created_at >= filters.since, filters.until is None or job.created_at < filters.until,
    ))


def test_the_prompt_search_looks_at_the_newest_of_its_scope_only(store, monkeypatch):
    monkeypatch.setattr(store_jobs, "TEXT_WINDOW", 5)
    old_a = _make(store, T0, "lighthouse", key_id=KEY_A)
    a_jobs = [_make(store, T0 + 1 + n, "fox", key_id=KEY_A) for n in range(4)]
    new_a = _make(store, T0 + 10, "lighthouse", key_id=KEY_A)
    for n in range(10):
        _make(store, T0 + 20 + n, "fox", key_id=KEY_B)  # newer jobs of another key do not push A's out of its window
    # Key A's newest five: its new lighthouse and four foxes; its old lighthouse is the sixth.
    assert _all(store, JobFilter(key_id=KEY_A, text="lighthouse")) == [new_a.id]
    assert _all(store, JobFilter(key_id=KEY_A, text="fox")) == [job.id for job in a_jobs][::-1]
    # Every job's newest five are all B's foxes.
    assert _all(store, JobFilter(text="lighthouse")) == []
    assert old_a.id in _all(store, JobFilter(key_id=KEY_A))  # the other filters are not bounded by it


def test_a_keys_filters_never_reach_another_keys_jobs(store):
    mine = _make(store, T0, "secret lighthouse plans", key_id=KEY_A, account="eu")
    theirs = _make(store, T0 + 1, "secret lighthouse plans", key_id=KEY_B, account="eu")
    assert _all(store, JobFilter(key_id=KEY_A, text="secret")) == [mine.id]
    assert _all(store, JobFilter(key_id=KEY_B, text="secret", account="eu")) == [theirs.id]
    assert _all(store, JobFilter(key_id=KEY_A, account="eu", since=T0 + 0.5)) == []


def test_an_expired_record_left_in_the_indexes_is_not_listed(store):
    gone = _make(store, T0, "lighthouse", account="eu")
    kept = _make(store, T0 + 1, "lighthouse", account="eu")
    store.connection.delete(KEYS.job(gone.id))  # its TTL ran out; retention has not dropped its index entries yet
    assert _all(store, JobFilter(text="lighthouse")) == [kept.id]
    assert _all(store, JobFilter(account="eu")) == [kept.id]


def test_a_search_holds_redis_a_batch_at_a_time(store, monkeypatch):
    monkeypatch.setattr(store_jobs, "RECORDS_BATCH", 7)
    made = [_make(store, T0 + n, f"prompt {n}") for n in range(30)]
    calls: list[int] = []
    script = store._prompts

    def counted(keys, args=(), client=None):
        calls.append(len(keys))
        return script(keys, args, client)

    store._prompts = counted
    assert _all(store, JobFilter(text="nowhere")) == []
    assert calls == [7, 7, 7, 7, 2]
    # A prompt never changes once written: the next search reads only the records it has not seen.
    calls.clear()
    newer = _make(store, T0 + 100, "Prompt NEW")
    assert _all(store, JobFilter(text="prompt new")) == [newer.id]
    assert _all(store, JobFilter(text="PROMPT 29")) == [made[29].id]
    assert calls == [1]


@pytest.mark.parametrize("cursor", ["x", "job_../../x"])
def test_a_cursor_not_issued_here_is_refused(store, cursor):
    from fluxhook.core.errors import InvalidRequest

    with pytest.raises(InvalidRequest):
        store.list(JobFilter(text="x"), cursor=cursor)
