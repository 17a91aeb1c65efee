"""Each process's copy of the prompts it has searched, case-folded: a job's prompt is written once, with the job,
and never changes, so a search reads from Redis only the prompts of jobs it has not seen yet.

Without it every ``q`` would read all 10,000 records of its window from Redis; with it a search reads the newest jobs'
prompts and the ids. Bounded by characters kept, the oldest seen dropped first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

# About 4 MB of text a process: the 10,000-job window of every caller that searches, at a few hundred characters
# a prompt.
MAX_CHARS = 4_000_000


class PromptCache:
    """Job id -> its prompt, case-folded ('' for none), for the ids a search asked about."""

    def __init__(self, max_chars: int = MAX_CHARS):
        self.max_chars = max_chars
        self._kept: OrderedDict[str, str] = OrderedDict()
        self._chars = 0
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
                    self._chars += len(text) + 1
            while self._chars > self.max_chars and self._kept:
                _, dropped = self._kept.popitem(last=False)
                self._chars -= len(dropped) + 1
        return folded
