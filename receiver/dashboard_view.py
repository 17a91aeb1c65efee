"""How a job and its timeline read on the dashboard: plain dicts of display strings.

The same dicts fill the server-rendered pages and the live JSON the page's script polls, so
a row looks the same whether the server drew it or the script updated it in place.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlencode

from fluxhook.core import job as st
from fluxhook.core.batch import Batch, BatchStatus
from fluxhook.core.config import Config
from fluxhook.core.job import Job, iso
from fluxhook.core.outcomes import DownloadOutcome
from fluxhook.core.variants import srcset
from fluxhook.core.wait_reasons import Waiting, describe
from fluxhook.credits.figures import format_credits
from fluxhook.lifecycle.notifications import host_shown
from fluxhook.lifecycle.steps.presenting import file_path
from fluxhook.media import posters
from receiver import dashboard_words
from receiver.dashboard_words import duration, reason_words

# The header's badge on a page that follows its events, in each state the page's script gives it: its word, the
# short line shown beside it and its tooltip. A bare "final" left people guessing what had ended.
LIVE_BADGE = {
    "ok": {"word": "live", "short": "updates by itself",
           "title": "Live: this page follows its events and updates in place; no need to reload it"},
    "done": {"word": "final", "short": "will not change",
             "title": "Final: what this page shows has ended (the job, or the batch and its items' thumbnails), "
                      "so the page no longer updates"},
    "offline": {"word": "offline", "short": "retrying",
                "title": "Offline: the page could not refresh and keeps trying; what it shows may be out of date"},
}


def clock(ts: float | None, *, millis: bool = False) -> str:
    """``2026-11-21 10:00:01`` (UTC), or '' for no time."""
    if ts is None:
        return ""
    moment = datetime.fromtimestamp(ts, timezone.utc)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{moment.microsecond // 1000:03d}" if millis else text


def _after(later: float | None, earlier: float | None) -> str:
    return f"+{duration(later - earlier)}" if later is not None and earlier is not None else ""


def row(job: Job, waiting: Waiting | None = None, config: Config | None = None) -> dict:
    """One job as a line of the list; ``waiting``: why it waits, if it does (``waits.of_jobs``); with ``config``, its
    picture's ``srcset`` at the list's size."""
    submitted = job.submitted_at
    return {
        "id": job.id,
        "href": f"/jobs/{job.id}",
        "status": job.status,
        "terminal": job.terminal,
        "model": job.model or "",
        "model_href": "/jobs?" + urlencode({"model": job.model}) if job.model else "",
        "source": job.source or "",
        "bfl_status": job.bfl_status or "",
        "created": clock(job.created_at),
        "submitted": clock(submitted) if submitted else (
            f"waiting: {reason_words(waiting.reason)}" if waiting else "waiting" if job.status == st.QUEUED else ""),
        # Each step counted from the one before: submitted -> BFL done -> stored.
        "bfl_done": _after(job.finished_at, submitted),
        "stored": _after(job.completed_at, job.finished_at or submitted) if job.status == st.STORED else "",
        "error": (job.error or {}).get("code", ""),
        "running": running(job),
        "thumbnail": f"/jobs/{job.id}/thumbnail" if job.thumbnail_key else None,
        **(picture(config, job, LIST) if config is not None else {"srcset": "", "sizes": ""}),
        "kind": "video" if job.video else "image" if job.image else "",
        "cost": credits(job.cost_credits),
        # The list shows the prompt's start; the job page shows it whole (at most 2,000 characters).
        "prompt": excerpt(job.prompt or "", PROMPT_IN_LIST),
    }


@dataclass(frozen=True)
class Place:
    """Where the dashboard shows a job's picture: its CSS width (dashboard.css) in a window up to ``narrow_below`` px wide
    and in a wider one, and the widths its srcset offers there (a 1x screen's to a 2x screen's; None: every width), so
    the browser takes the variant its screen needs and a page of 100 pictures carries no link it would hardly take."""

    narrow_below: int
    narrow: str
    wide: int
    widths: tuple[int, int] | None

    def sizes(self, width: int) -> str:
        """The ``<img sizes>`` of a picture ``width`` px wide here: never wider than the picture, which is never
        enlarged, so a small original is taken at its own size (its one link) whatever the place."""
        if width >= self.wide:
            return f"(max-width: {self.narrow_below}px) {self.narrow}, {self.wide}px"
        return f"(max-width: {self.narrow_below}px) min({self.narrow}, {width}px), {width}px"


LIST = Place(640, "52px", 64, (64, 128))  # the list's thumbnail
SHEET = Place(640, "90px", 120, (128, 256))  # a contact sheet's tile
PAGE = Place(820, "calc(100vw - 70px)", 540, None)  # the job page's half of the content, all of it when narrow


def picture(config: Config, job: Job, place: Place) -> dict:
    """The job's stored image (a video's: its poster) shown at ``place``: ``srcset``, relative signed links (they work
    on whatever host the dashboard is reached by, under its CSP) at the place's widths, ``format=auto``, and ``sizes``;
    both '' when it has none."""
    if job.image and job.storage_key:
        name, width = "image", int(job.image.get("width") or 0)
    elif job.video and job.poster and job.video.get("width") and job.video.get("height"):
        name, width = "poster", posters.width_of(int(job.video["width"]), int(job.video["height"]))
    else:
        return {"srcset": "", "sizes": ""}
    if not width:
        return {"srcset": "", "sizes": ""}
    url = file_path(config, job.id, name)
    return {"srcset": srcset(url, width, place.widths), "sizes": place.sizes(width)}


# Characters of the prompt the list shows under the job's id, and the job's page before "show all".
PROMPT_IN_LIST = 80
PROMPT_SHOWN = 280
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "video/mp4": "mp4"}


def _download_name(job: Job) -> str:
    """``job_….jpg``: the name a download of the job's stored file is saved under; '' when none is stored."""
    stored = job.video or job.image
    if not stored or not job.storage_key:
        return ""
    return f"{job.id}.{_EXTENSIONS.get(stored.get('content_type', ''), 'bin')}"


def api_examples(base_url: str, job: Job) -> list[dict]:
    """The job through the API, as commands to copy: read it, and fetch its stored file. The token stays a
    variable, ``$TOKEN`` as the README and docs name it: the dashboard never holds one."""
    auth = '-H "Authorization: Bearer $TOKEN"'
    examples = [{"title": "Read this job", "command": f"curl -s {base_url}/v1/jobs/{job.id} {auth}"}]
    name = _download_name(job)
    if name:
        kind = "video" if job.video else "image"
        examples.append({"title": f"Download its {kind}",
                         # -L: a store that serves its own files (S3) answers with a redirect to them.
                         "command": f"curl -sL -o {name} {base_url}/v1/jobs/{job.id}/{kind} {auth}"})
    if job.prompt and job.model:
        body = json.dumps({"model": job.model, "input": {"prompt": job.prompt}}, ensure_ascii=False)
        examples.append({"title": "Submit the prompt again",
                         "command": f"curl -s -X POST {base_url}/v1/jobs {auth} -H 'Content-Type: application/json' "
                                    f"-d {shlex.quote(body)}"})
    return examples


def credits(amount: float | None) -> str:
    """BFL's price as the dashboard shows it (``6 credits``), or '' when BFL never said."""
    return "" if amount is None else f"{format_credits(amount)} credit{'' if amount == 1 else 's'}"


def excerpt(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def running(job: Job) -> str:
    """BFL's word and progress while the task runs (``Reasoning · 35 %``), else ''."""
    if job.status not in (st.QUEUED, st.SUBMITTED) or not job.bfl_status:
        return ""
    if job.progress is None:
        return job.bfl_status
    return f"{job.bfl_status} · {round(job.progress * 100)} %"


def waiting_counts(by_reason: dict[str, int]) -> list[dict]:
    """A key's waiting jobs by reason (the key object's ``queued_by_reason``), as the Keys page lists them."""
    return [{"count": count, "words": reason_words(reason), "reason": reason,
             "title": describe(reason)}
            for reason, count in by_reason.items()]


def waiting_words(waiting: Waiting | None) -> str:
    """Why a job waits, in words (``its app key's daily_credits are spent for today, until 2026-11-22 00:00:00``);
    '' when it does not."""
    if waiting is None:
        return ""
    until = f", until {clock(waiting.until)} UTC" if waiting.until is not None else ""
    return f"{describe(waiting.reason)}{until}"


def detail(config: Config, job: Job, events: list[dict], waiting: Waiting | None = None) -> dict:
    """Everything the job page shows; ``waiting``: why it waits, if it does (``waits.of``)."""
    image = job.image or job.video or {}
    percent = None if job.progress is None or not running(job) else round(job.progress * 100)
    return {
        **row(job, waiting, config),
        "waiting": waiting_words(waiting),
        "waiting_reason": str(waiting.reason) if waiting else "",
        "bfl_id": job.bfl_id or "",
        # The BFL account that sent its task, its polls and callbacks (the job JSON's ``account``).
        "account": job.account or "",
        "updated": clock(job.updated_at),
        "completed": clock(job.completed_at),
        "finished": clock(job.finished_at),
        "attempts": " · ".join(_count(n, word) for n, word in
                                ((job.webhooks, "callback"), (job.polls, "poll"), (job.downloads, "download"))),
        # Relative, so it works on whatever host the dashboard is reached by (and under its CSP).
        "image_url": file_path(config, job.id, "image") if job.image and job.storage_key else None,
        **({f"image_{name}": value for name, value in picture(config, job, PAGE).items()} if job.image
           else {"image_srcset": "", "image_sizes": ""}),
        "video_url": file_path(config, job.id, "video") if job.video and job.storage_key else None,
        "poster_url": file_path(config, job.id, "poster") if job.video and job.poster else None,
        "image_width": image.get("width"),
        "image_height": image.get("height"),
        "image_info": _image_info(image) if image else "",
        "progress": "" if percent is None else f"{percent} %",
        "progress_percent": percent,  # the page's progress bar; None hides it
        "sha256": image.get("sha256", ""),
        "error_code": (job.error or {}).get("code", ""),
        "error_message": (job.error or {}).get("message", ""),
        "metadata": json.dumps(job.metadata, indent=2, ensure_ascii=False) if job.metadata else "",
        "prompt": job.prompt or "",
        # A long prompt shows its start, and the rest behind "show all" (a <details>: no script needed).
        "prompt_start": excerpt(job.prompt or "", PROMPT_SHOWN) if len(job.prompt or "") > PROMPT_SHOWN else "",
        "prompt_chars": f"{len(job.prompt or ''):,}",
        "download_name": _download_name(job),
        "seed": "" if job.seed is None else str(job.seed),
        "batch_id": job.batch_id or "",
        "batch_item": f"item #{job.batch_index:,}" if job.batch_id and job.batch_index is not None else "",
        "cost_detail": _cost_detail(job),
        **steps(job),
        "timeline": timeline(job, events),
    }


def steps(job: Job) -> dict:
    """How long each step took from the one before it, in words (``3.2 s after it was sent``): the timeline below counts
    from the job's creation, and a bare ``+3.2 s`` would read as one more such offset; '' for a step not taken."""
    sent = job.submitted_at
    bfl = f"{duration(job.finished_at - sent)} after it was sent" if job.finished_at and sent else ""
    ended = ""
    if job.terminal and job.completed_at:
        if job.finished_at:
            ended = f"{duration(job.completed_at - job.finished_at)} after BFL finished"
        elif sent:
            ended = f"{duration(job.completed_at - sent)} after it was sent"
    return {"bfl_took": bfl, "ended_took": ended}


def notify_note(job: Job, batch: Batch | None, *, has_messages: bool) -> str:
    """What the job page says of its notifications beside its messages (or in their place): a batch item's
    ``batch.ended`` goes to its batch's ``notify_url``, and its own ``job.*`` messages only when the batch's
    ``notify_events`` asks for them, so "no notify_url" of the item alone read as if nothing was sent at all."""
    if not job.batch_id:
        return "" if has_messages else "none: this job has no notify_url"
    if batch is None or not batch.notify_url:
        return "" if has_messages else "none: neither this item nor its batch has a notify_url"
    ended = f"its batch's receiver, {host_shown(batch.notify_url)}, gets batch.ended when the batch's last item ends"
    if has_messages:
        return f"Besides this item's own messages, {ended}."
    if batch.notify_events:
        return f"None yet of this item's own (its batch asked for {', '.join(batch.notify_events)}); {ended}."
    return (f"No message of this item's own: {ended}; an item sends its own job.* messages only when its batch's "
            "notify_events asks for them.")


def _cost_detail(job: Job) -> str:
    """Credits with the megapixels read and made (``6 credits · 0 MP in · 0.75 MP out``), what BFL said of them."""
    parts = [credits(job.cost_credits)] if job.cost_credits is not None else []
    parts += [f"{mp:g} MP {way}" for mp, way in ((job.cost_input_mp, "in"), (job.cost_output_mp, "out")) if mp is not None]
    return " · ".join(parts)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _image_info(image: dict) -> str:
    size = image.get("size") or 0
    amount = (f"{size / 1024 / 1024:.1f} MiB" if size >= 1024 * 1024
              else f"{size / 1024:.0f} KiB" if size >= 1024 else f"{size} bytes")
    text = f"{image.get('width')}×{image.get('height')} · {image.get('content_type', '')} · {amount}"
    if image.get("duration"):  # a video
        text += f" · {image['duration']:g} s at {image.get('fps', 0):g} fps · {'sound' if image.get('has_audio') else 'silent'}"
    return text


# Entries recorded within one millisecond read in the order such things happen: a recorded event's time is cut to the
# millisecond, so by time alone a job's first wait would read above its creation.
_RANK = {"created": 0, "waiting": 1, "submission": 2, "callback": 3, "poll": 4, "bfl": 5, "download": 6,
         "draft_cache": 7, "status": 9}
_UNKNOWN_RANK = 8  # a kind a newer release records: after what this one knows, before the job's end


def order(entry: dict) -> tuple[int, int]:
    """Where a timeline entry sorts: by its millisecond, then by its kind's rank."""
    return math.floor(entry["ts"] * 1000), _RANK.get(entry["kind"], _UNKNOWN_RANK)


def _stored_download(job: Job, events: list[dict]) -> dict | None:
    """The download that stored the job's file, when the job ended stored: its end and the job's are one moment."""
    if job.status != st.STORED:
        return None
    downloads = [e for e in events if e.get("kind") == "download" and e.get("outcome") == DownloadOutcome.STORED]
    return downloads[-1] if downloads else None


def timeline(job: Job, events: list[dict]) -> list[dict]:
    """The job's story, oldest first: the milestones its record holds, and every recorded event, each in words
    (``dashboard_words``); each entry's ``offset`` counts from the job's creation."""
    # Jobs fluxhook submits hold a slot pool; tracked ones (submitted elsewhere) do not.
    entries = [_entry(job.created_at, "created", dashboard_words.created(tracked=not job.pool))]
    stored_by = _stored_download(job, events)
    for event in events:
        if event is stored_by:
            continue  # said in the job's last row, where it ended
        at = event["at"]
        if event.get("kind") == "download" and isinstance(event.get("seconds"), (int, float)):
            at -= event["seconds"]  # recorded when the attempt ended; shown where it began
        entries.append(_entry(at, event.get("kind", ""), dashboard_words.sentence(event)))
    if job.finished_at:
        entries.append(_entry(job.finished_at, "bfl", dashboard_words.BFL_FINISHED))
    if job.terminal and job.completed_at:
        took = float(stored_by.get("seconds") or 0) if stored_by is not None else None
        entries.append(_entry(job.completed_at, "status",
                              dashboard_words.ended(job.status, (job.error or {}).get("message", ""), stored_in=took)))
    entries.sort(key=order)
    # Counted in the milliseconds they are ordered by: the job's creation is +0 ms, never "+1 ms" of its own.
    start = order({"ts": job.created_at, "kind": "created"})[0]
    for entry in entries:
        at = order(entry)[0]
        entry["offset"] = _after(at / 1000, start / 1000) if at >= start else ""
    return entries


def _entry(ts: float, kind: str, said: dashboard_words.Sentence) -> dict:
    return {"ts": ts, "at": iso(ts), "clock": clock(ts, millis=True), "kind": kind, "title": said.title,
            "text": said.text, "tone": said.tone}


def batch_done(batch: Batch) -> str:
    """``120 sent · 80 of 500 ended``: a batch's items ended, and while it runs those BFL was sent (each paid for
    whatever follows: what a cancel would save is the rest)."""
    sent = f"{batch.sent:,} sent · " if batch.status == BatchStatus.RUNNING else ""
    return f"{sent}{batch.ended_items:,} of {batch.total:,} ended"
