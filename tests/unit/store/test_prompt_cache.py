"""Each process's copy of the prompts it has searched (fluxhook/store/prompt_cache.py): folded, bounded."""

from __future__ import annotations

from fluxhook.store.prompt_cache import PromptCache


def test_prompts_are_kept_folded_and_given_back():
    cache = PromptCache()
    assert cache.keep({"job_a": "A Red FOX", "job_b": None, "job_c": "Straße"}) == {
        "job_a": "a red fox", "job_b": "", "job_c": "strasse"}
    assert cache.known(["job_a", "job_b", "job_x"]) == {"job_a": "a red fox", "job_b": ""}


def test_the_oldest_seen_go_first_past_the_bound():
    cache = PromptCache(max_chars=25)
    cache.keep({"job_1": "x" * 9, "job_2": "y" * 9})
    cache.keep({"job_3": "z" * 9})  # 30 characters with their separators: the first goes
    assert set(cache.known(["job_1", "job_2", "job_3"])) == {"job_2", "job_3"}
    cache.keep({"job_2": "ignored: a prompt never changes"})
    assert cache.known(["job_2"]) == {"job_2": "y" * 9}
