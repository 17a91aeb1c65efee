"""Each process's copy of the prompts it has searched, case-folded: a job's prompt is written once, with the job,
and never changes, so a search reads from Redis only the prompts of jobs it has not seen yet.

Without it every ``q`` would read all 10,000 records of its window from Redis; with it a search reads the newest jobs'
prompts and the ids. Bounded by characters kept, the oldest seen dropped first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from fluxhook.core.recent import Recent

# About 4 MB of text a process: the 10,000-job window of every caller that searches, at a few hundred characters
# a prompt.
MAX_CHARS = 4_000_000


class PromptCache:
    """Job id -> its prompt, case-folded ('' for none), for the ids a search asked about."""

    def __init__(self, max_chars: int = MAX_CHARS):
        # Each prompt weighs its characters and a separator: no more entries than that could be kept.
        self._kept: Recent[str, str] = Recent(max_chars, weigh=lambda text: len(text) + 1, most_weight=max_chars)
        self._lock = threading.Lock()

    def known(self, job_ids: Iterable[str]) -> dict[str, str]:
        """The folded prompts of those of ``job_ids`` it holds."""
        with self._lock:
            return {job_id: self._kept[job_id] for job_id in job_ids if job_id in self._kept}

    def keep(self, prompts: dict[str, str | None]) -> dict[str, str]:
        """Keep each job's prompt (None: no prompt), folded; returns them folded."""
        folded = {job_id: (prompt or "").casefold() for job_id, prompt in prompts.items()}
        with self._lock:
            for job_id, text in folded.items():
                if job_id not in self._kept:
                    self._kept[job_id] = text
        return folded
