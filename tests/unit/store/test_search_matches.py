"""A prompt search made again costs what changed (fluxhook/store/search_matches.py, JobStore._matches): the ids of
the jobs made since the last look are read, not the whole window, on a real Redis; what was deleted, made with an
older id or brought back into the window is still right. The search's results themselves: test_jobs_filters.py."""

from __future__ import annotations

import pytest

import fluxhook.store.jobs as store_jobs
from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.job_filters import JobFilter
from fluxhook.store.jobs import JobStore
from fluxhook.store.search_matches import ENTRY_SECONDS, MARGIN_SECONDS, Matches, SearchMatches

T0 = 1_790_000_000.0
KEY_A = "key_aaaaaaaaaaaaaaaa"


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock(T0 + 3600)


@pytest.fixture()
def store(connection, clock) -> JobStore:
    return JobStore(connection, clock=clock)


def _make(store: JobStore, at: float, prompt: str, key_id: str | None = None) -> Job:
    job = Job(id=new_job_id(at), status=st.SUBMITTED, model="flux-2-pro", key_id=key_id, prompt=prompt,
              bfl_id=new_job_id(), created_at=at, updated_at=at)
    assert store.create(job)[1]
    return job


def _ids(store: JobStore, filters: JobFilter) -> list[str]:
    jobs, cursor = store.list(filters, limit=1000)
    assert cursor is None
    return [job.id for job in jobs]


class Reads:
    """The ids the store's search reads of an index, and the records whose prompt it reads."""

    def __init__(self, store: JobStore, monkeypatch):
        self.ids: list[int] = []
        self.prompts: list[int] = []
        walk, script = store.connection.zrevrangebylex, store._prompts

        def walked(*args, **kwargs):
            found = walk(*args, **kwargs)
            self.ids.append(len(found))
            return found

        def read(keys, args=(), client=None):
            self.prompts.append(len(keys))
            return script(keys, args, client)

        monkeypatch.setattr(store.connection, "zrevrangebylex", walked)
        store._prompts = read

    def clear(self) -> None:
        self.ids.clear()
        self.prompts.clear()


def test_a_search_made_again_reads_only_the_jobs_made_since(store, clock, monkeypatch):
    old = [_make(store, T0 + n, f"a lighthouse {n}" if n % 3 else f"a fox {n}", KEY_A) for n in range(300)]
    reads = Reads(store, monkeypatch)
    lighthouses = [job.id for job in old if "lighthouse" in job.prompt][::-1]

    assert _ids(store, JobFilter(key_id=KEY_A, text="LIGHTHOUSE")) == lighthouses
    assert sum(reads.ids) == 300 and sum(reads.prompts) == 300  # the first: the whole window
    reads.clear()
    clock.now += 20  # an open list's refresh, 20 s on: two new jobs, one found
    new = [_make(store, clock.now, "a lighthouse keeper"), _make(store, clock.now, "a fox", KEY_A),
           _make(store, clock.now, "another lighthouse", KEY_A)]

    assert _ids(store, JobFilter(key_id=KEY_A, text="lighthouse")) == [new[2].id, *lighthouses]
    # Only the key's jobs made since the last look (and its margin) were read: 2 ids, 2 prompts; then the page.
    assert sum(reads.ids) == 2 and reads.prompts == [2]
    reads.clear()
    assert _ids(store, JobFilter(key_id=KEY_A, text="lighthouse")) == [new[2].id, *lighthouses]
    assert sum(reads.ids) == 2 and reads.prompts == []  # again at once: the margin's two, their prompts known


def test_a_job_deleted_since_is_not_found_and_one_indexed_with_an_earlier_id_is_found_in_time(store, clock):
    kept, gone = _make(store, T0, "lighthouse one"), _make(store, T0 + 1, "lighthouse two")
    assert _ids(store, JobFilter(text="lighthouse")) == [gone.id, kept.id]
    store.delete(gone.id)
    clock.now += 5
    # Made by a process whose clock is behind, or indexed a moment after its id was made: within the margin.
    late = _make(store, clock.now - 5 - MARGIN_SECONDS / 2, "lighthouse three")

    assert _ids(store, JobFilter(text="lighthouse")) == [late.id, kept.id]
    # Indexed with an id from long before (a restore): found once the whole window is read again.
    restored = _make(store, T0 + 2, "lighthouse four")
    clock.now += ENTRY_SECONDS + 1
    assert _ids(store, JobFilter(text="lighthouse")) == [late.id, restored.id, kept.id]


def test_a_window_that_reaches_below_what_was_searched_is_read_again(store, monkeypatch):
    monkeypatch.setattr(store_jobs, "TEXT_WINDOW", 3)
    old = _make(store, T0, "lighthouse")
    newer = [_make(store, T0 + 1 + n, "fox") for n in range(3)]
    assert _ids(store, JobFilter(text="lighthouse")) == []  # the newest three are foxes

    store.delete(newer[-1].id)

    assert _ids(store, JobFilter(text="lighthouse")) == [old.id]


def test_the_searches_kept_are_bounded_though_they_match_nothing():
    kept = SearchMatches(max_searches=3)
    for n in range(10):
        kept.keep("all", f"text {n}", Matches((), "", 0.0, 0.0))
    assert [n for n in range(10) if kept.get("all", f"text {n}") is not None] == [7, 8, 9]


def test_the_matches_kept_are_bounded_by_their_ids_the_least_recently_searched_dropped_first():
    kept = SearchMatches(max_ids=5)
    for text in ("a", "b", "c"):
        kept.keep("all", text, Matches(("job_1", "job_2"), "", 0.0, 0.0))
    assert kept.get("all", "a") is None and kept.get("all", "c") is not None
    kept.keep("all", "b", Matches(("job_1",), "", 0.0, 0.0))  # b again: in place of its old matches
    kept.keep("all", "d", Matches(("job_1", "job_2"), "", 0.0, 0.0))
    assert [kept.get("all", t) is not None for t in "bcd"] == [True, True, True]
