"""The dashboard's words: a duration and a wait's reason, short, on every page and in the timeline; and what each entry
of a job's timeline says, in words a person reads without knowing fluxhook's insides:
"BFL called back: the task failed; checking with BFL", never "Callback: Error confirm queued".

``BY_KIND`` holds a sentence maker for every ``timeline.Kind`` the lifecycle records, and the milestones the job record
holds (created, BFL done, ended) read here too: a short ``title`` (one line of the job page, even at 390 px), the
``text`` that follows it, and a ``tone`` (ok, info, warn, bad) for its dot. A word this release does not know (an
entry recorded by a newer one, an error code added later) still reads as words, never as ``snake_case``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from fluxhook.core import job as st
from fluxhook.core.outcomes import DownloadOutcome, ReportOutcome
from fluxhook.core.wait_reasons import describe
from fluxhook.lifecycle.steps.timeline import Kind


def duration(seconds: float) -> str:
    """A short human duration: ``850 ms``, ``4.2 s``, ``3 min 05 s``, ``2 h 07 min``."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


# A reason whose own words would widen the job list's column past its room; its description says the rest.
SHORTER = {"end_user_max_active": "end user limit", "end_user_daily_credits": "end user credits"}


def reason_words(reason: str) -> str:
    """A wait's reason as a few words (``key daily credits``, ``BFL slots``, ``end user limit``)."""
    return SHORTER.get(str(reason)) or words(reason)


@dataclass(frozen=True)
class Sentence:
    """One timeline row in words: ``title`` (a few words), ``text`` (what follows it) and ``tone``."""

    title: str
    text: str = ""
    tone: str = "info"

    def __str__(self) -> str:
        return f"{self.title}: {self.text}" if self.text else self.title


def words(code) -> str:
    """A code as words (``bfl_rate_limited`` -> ``BFL rate limited``), for codes no sentence names."""
    return " ".join("BFL" if part.lower() == "bfl" else part for part in str(code or "").replace("_", " ").split())


# What BFL's status word says of the task, as the end of a sentence.
_BFL_SAYS = {
    st.BFL_PENDING: "the task is waiting its turn at BFL",
    st.BFL_READY: "the result is ready",
    st.BFL_ERROR: "the task failed",
    st.BFL_FAILED: "the task failed",
    st.BFL_REQUEST_MODERATED: "BFL's moderation refused the request",
    st.BFL_CONTENT_MODERATED: "BFL's moderation withheld the result",
    st.BFL_TASK_NOT_FOUND: "BFL does not know the task",
}


def bfl_says(status: str | None) -> str:
    """BFL's status word as what it says of the task (a word BFL adds, such as ``Generating``, is running)."""
    if not status:
        return "with no status"
    return _BFL_SAYS.get(status) or f"the task is running ({status})"


# -- milestones the job record holds ------------------------------------------------------------------------

def created(tracked: bool) -> Sentence:
    """The job's first row: created here, or tracked (its task sent to BFL by another app)."""
    if tracked:
        return Sentence("Tracking started", "another app sent the task to BFL; fluxhook follows it")
    return Sentence("Job created")


BFL_FINISHED = Sentence("BFL finished the task")

_ENDED_TONE: dict[str, str] = {st.STORED: "ok", st.FAILED: "bad", st.MODERATED: "bad", st.EXPIRED: "bad",
                               st.CANCELED: "warn", st.ABORTED: "warn"}


def ended(status: str, message: str = "", *, stored_in: float | None = None) -> Sentence:
    """The job's last row: the status it ended in, and its error's message if it has one. ``stored_in``: the seconds
    of the download that stored its file, told here rather than in a row of its own, since its end is the job's."""
    if status == st.STORED and not message:
        message = "its file is ready to view and download"
        if stored_in is not None:
            message = f"downloaded and stored in {duration(stored_in)}; {message}"
    return Sentence(f"Job {status}", message, _ENDED_TONE.get(status, "info"))


# -- recorded events, one maker per kind --------------------------------------------------------------------

_REFUSED = {
    "bad_secret": "it was not signed with this job's secret",
    "bad_token": "its URL is not one fluxhook issued",
    "wrong_task": "it was about another task than this job's",
    "payload_too_large": "its body was too large",
    "invalid_request": "its body was not a report fluxhook can read",
}


def _callback(event: dict) -> Sentence:
    outcome, says = event.get("outcome"), bfl_says(event.get("bfl_status"))
    if outcome == "refused":
        reason = event.get("reason", "")
        return Sentence("Callback refused", _REFUSED.get(reason) or words(reason), "bad")
    if outcome == "kept":
        return Sentence("BFL called back early", f"{says}; kept until BFL answers the submission")
    result = event.get("result")
    if outcome == "duplicate" or result == ReportOutcome.DUPLICATE:
        return Sentence("BFL called back again", f"{says}; already known, nothing more to do")
    title = "BFL called back"
    if result == ReportOutcome.DOWNLOAD_QUEUED:
        return Sentence(title, "the result is ready; downloading it", "ok")
    if result == ReportOutcome.CONFIRM_QUEUED:
        # A callback could be forged or replayed (and the account's shared URL proves nothing): BFL is asked first.
        return Sentence(title, f"{says}; checking with BFL", "warn")
    if result == ReportOutcome.FINISHED:
        return Sentence(title, says, "bad")
    if result == ReportOutcome.SLOT_FREED:
        # BFL has no cancel: the ended job held its slot while BFL ran its task on.
        return Sentence(title, f"{says}; the task has ended at BFL, so its slot is free")
    if result == ReportOutcome.GONE:
        return Sentence(title, f"{says}; the job no longer exists")
    if result in (ReportOutcome.NOT_SUBMITTED, ReportOutcome.OTHER_TASK):
        return Sentence(title, f"{says}; not about this job's task")
    return Sentence(title, says)  # pending: still running


_POLL_ERRORS = {
    "bfl_unavailable": "BFL did not answer; asking again later",
    "bfl_rate_limited": "BFL was busy (429); asking again later",
    "bfl_auth_failed": "BFL refused the account's API key",
    "bfl_redirect_refused": "BFL sent fluxhook to a host it does not trust",
}


def _poll(event: dict) -> Sentence:
    error = event.get("error")
    if error:
        return Sentence("Could not ask BFL", _POLL_ERRORS.get(error) or words(error), "warn")
    answer = event.get("answer")
    return Sentence("Asked BFL", bfl_says(answer), "warn" if answer in st.BFL_FAILURES else "info")


# Why BFL did not take a task (the code of the error its answer raised).
_NOT_TAKEN = {
    "bfl_rate_limited": ("BFL was full", "it answered 429; back in line for a slot", "warn"),
    "bfl_unavailable": ("BFL did not answer", "it was out of reach or answered 5xx", "warn"),
    "insufficient_credits": ("BFL did not take the task", "the account is out of credits (402)", "warn"),
    "bfl_auth_failed": ("BFL did not take the task", "it refused the account's API key", "bad"),
    "bfl_rejected": ("BFL did not take the task", "it refused the request as malformed", "bad"),
    "bfl_redirect_refused": ("BFL did not take the task", "it sent fluxhook to a host it does not trust", "bad"),
    "bfl_error": ("BFL did not take the task", "it answered with an error", "bad"),
}


def _submission(event: dict) -> Sentence:
    outcome, account = event.get("outcome", ""), event.get("account")
    on = f" (account {account})" if account else ""
    if outcome == "submitted":
        return Sentence("Sent to BFL", f"task {event.get('bfl_id', '')}{on}", "ok")
    if outcome == "uncertain":
        return Sentence("Sent to BFL, no answer", f"BFL may have the task; waiting for its callback, "
                                                  f"not sending it again{on}", "warn")
    if outcome == "reconciled":
        return Sentence("BFL named the task", f"its callback says task {event.get('bfl_id', '')}; following it", "ok")
    if outcome == "budget_exceeded":
        return Sentence("Not sent", "today's credits stayed spent for the whole hour it could wait", "bad")
    if outcome == "key_revoked":
        return Sentence("Not sent", "its app key was revoked; nothing was charged", "bad")
    title, text, tone = _NOT_TAKEN.get(outcome) or ("BFL did not take the task", words(outcome), "bad")
    return Sentence(title, text + on, tone)


def _waiting(event: dict) -> Sentence:
    reason = event.get("reason") or ""
    until = f" until {event['until']}" if event.get("until") else ""
    return Sentence(f"Waiting: {reason_words(reason)}", f"{describe(reason)}{until}", "warn")


def _download(event: dict) -> Sentence:
    outcome = event.get("outcome")
    took = f"after {duration(float(event.get('seconds') or 0))}"
    error = f"{event['error']}; " if event.get("error") else ""
    if outcome == DownloadOutcome.STORED:
        return Sentence("Downloaded and stored", f"in {duration(float(event.get('seconds') or 0))}", "ok")
    if outcome in (DownloadOutcome.RETRY, DownloadOutcome.ERROR):
        return Sentence("Download failed", f"{error}trying again ({took})", "warn")
    if outcome == DownloadOutcome.FAILED:
        return Sentence("Download failed", f"{error}the job failed ({took})", "bad")
    if outcome == DownloadOutcome.EXPIRED:
        return Sentence("Download failed", f"BFL's link to the result expired ({took})", "bad")
    if outcome == DownloadOutcome.MODERATED:
        return Sentence("Download stopped", f"BFL's moderation withheld the result ({took})", "bad")
    if outcome == DownloadOutcome.REFUTED:
        return Sentence("Download stopped", f"BFL says the task is not ready after all; waiting for it ({took})")
    if outcome == DownloadOutcome.RESTART:
        return Sentence("Download stopped", f"BFL took back its Ready; waiting for it again ({took})")
    if outcome == DownloadOutcome.SKIPPED:
        return Sentence("Download not needed", "the job had moved on")
    if outcome == DownloadOutcome.HANDED_BACK:
        return Sentence("Download paused", f"the worker stopped; the next one starts it again ({took})", "warn")
    return Sentence("Download ended", f"{words(outcome)} ({took})")


def _draft_cache(event: dict) -> Sentence:
    outcome = event.get("outcome")
    if outcome == "stored":
        return Sentence("Draft cache kept", f"BFL's draft cache, {event.get('size', 0):,} bytes, stored with the job",
                        "ok")
    if outcome == "skipped":
        why = words(event.get("error"))
        return Sentence("Draft cache not kept", f"{why}: {event['reason']}" if event.get("reason") else why, "warn")
    return Sentence("Draft cache", words(outcome))


BY_KIND: dict[Kind, Callable[[dict], Sentence]] = {
    Kind.SUBMISSION: _submission,
    Kind.WAITING: _waiting,
    Kind.CALLBACK: _callback,
    Kind.POLL: _poll,
    Kind.DOWNLOAD: _download,
    Kind.DRAFT_CACHE: _draft_cache,
}


def sentence(event: dict) -> Sentence:
    """What one recorded timeline entry says (an entry of a kind this release does not know, its words)."""
    try:
        maker = BY_KIND[Kind(event.get("kind", ""))]
    except (KeyError, ValueError):
        return Sentence(words(event.get("kind")).capitalize() or "Event", words(event.get("outcome")))
    return maker(event)
