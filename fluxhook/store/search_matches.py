"""Each process's answers to the prompt searches (``q``) it has made, kept so that a search made again costs what
changed since, not a scan of its whole window.

For a list's scope (every job, or one app key's) and a searched text (case-folded), the ids of the scope's newest
``TEXT_WINDOW`` jobs whose prompt holds it, newest first. A prompt never changes once written, so the same search
made again (an open job list's refresh at each job event, a client polling the same ``q``) reads only the ids of the
jobs made since the last one (``fluxhook.store.jobs.JobStore._matches``), with those of the ``MARGIN_SECONDS`` before
it: a job's id is its creation time, read by whichever process made it a moment before it was indexed, so one may
arrive a little below the newest id seen. The whole window is scanned again after ``ENTRY_SECONDS`` (a job indexed
later still than the margin is found by then), and whenever the window reaches below what was scanned (jobs
deleted). A job deleted since is dropped where the list checks its page against the indexes.

Bounded by the ids kept and by the searches kept (texts that match nothing are kept too), the least recently
searched dropped first.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from fluxhook.core.recent import Recent

# Ids made this long before the last scan are looked at again (the clocks of the processes that make jobs may differ
# by about this much, and a job is indexed a moment after its id is made).
MARGIN_SECONDS = 10.0
# A search's matches are worked out from its whole window again after this long.
ENTRY_SECONDS = 60.0
# About 15 MB of ids a process: the whole 10,000-job window matched by 20 searches.
MAX_IDS = 200_000
# Searches kept, however few ids each holds (a text is at most 200 characters): about 1 MB beside the ids.
MAX_SEARCHES = 2_000


@dataclass(frozen=True)
class Matches:
    """One search's matches in its scope's window, as of ``scanned_at``."""

    ids: tuple[str, ...]  # newest first, none below ``bottom``
    bottom: str  # the oldest id of the window when they were worked out: everything from it up was looked at
    scanned_at: float  # when the ids made before were last looked at (the store's clock)
    made_at: float  # when the whole window was last scanned


class SearchMatches:
    """(scope, folded text) -> its ``Matches``, for the searches this process has made."""

    def __init__(self, max_ids: int = MAX_IDS, max_searches: int = MAX_SEARCHES):
        self._kept: Recent[tuple[str, str], Matches] = Recent(max_searches, weigh=lambda m: len(m.ids), most_weight=max_ids)
        self._lock = threading.Lock()

    def get(self, scope: str, text: str) -> Matches | None:
        with self._lock:
            found = self._kept.get((scope, text))
            if found is not None:
                self._kept[(scope, text)] = found
            return found

    def keep(self, scope: str, text: str, matches: Matches) -> None:
        """Keep a search's matches in place of what it had (two requests working one out at once: either will do)."""
        with self._lock:
            self._kept[(scope, text)] = matches
