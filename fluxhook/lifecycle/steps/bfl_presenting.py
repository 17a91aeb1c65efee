"""The BFL-compatible API's JSON (BFL's own shapes): a job as BFL's ``get_result`` and submission answers put it,
and as BFL's callback tells it to the app's own webhook.

Made from the job record alone, so ``get_result`` is one Redis read; the app's webhook (see ``app_webhooks``)
gets the same fields plus what BFL's callbacks add, so an app sees one shape whichever way it learns of a result.
"""

from __future__ import annotations

from datetime import datetime, timezone

from fluxhook.core import job as st
from fluxhook.core.config import Config
from fluxhook.core.job import Job
from fluxhook.lifecycle.steps.presenting import file_url

# Words that end a task at BFL: until fluxhook has the file stored, the app hears a running word instead.
_ENDING_WORDS = frozenset({st.BFL_READY, *st.BFL_FAILURES})
_MODERATION_WORDS = frozenset({st.BFL_REQUEST_MODERATED, st.BFL_CONTENT_MODERATED})


def polling_url(config: Config, job_id: str) -> str:
    """Where the app polls the job: fluxhook's ``get_result``, never BFL's."""
    return f"{config.public_base_url}/v1/get_result?id={job_id}"


def submission(config: Config, job: Job) -> dict:
    """The answer to ``POST /v1/{model}``: BFL's ``{id, polling_url, cost, input_mp, output_mp}``; the price
    fields are BFL's when it has answered, else null (the job waits for a slot)."""
    return {"id": job.id, "polling_url": polling_url(config, job.id), "cost": job.cost_credits,
            "input_mp": job.cost_input_mp, "output_mp": job.cost_output_mp}


def not_found(task_id: str) -> dict:
    """BFL's answer for an id it does not know (also for another key's job: its existence is not told)."""
    return {"id": task_id, "status": st.BFL_TASK_NOT_FOUND}


def status_word(job: Job) -> str:
    """BFL's status word for the job as fluxhook has it: ``Ready`` only once its file is stored."""
    if job.status == st.STORED:
        return st.BFL_READY
    if job.status == st.MODERATED:
        return job.bfl_status if job.bfl_status in _MODERATION_WORDS else st.BFL_CONTENT_MODERATED
    if job.terminal:
        return st.BFL_ERROR
    # Running: BFL's last running word (FLUX 3 video's Reasoning and Generating pass through), Pending until it has
    # one; a job whose result is downloading still shows the word before BFL's Ready, never going back to Pending.
    word = job.bfl_running or job.bfl_status
    return word if word and word not in _ENDING_WORDS else st.BFL_PENDING


def result(config: Config, job: Job) -> dict:
    """The job as ``GET /v1/get_result`` answers it: ``{id, status, result, progress, details, preview}``."""
    word = status_word(job)
    body: dict = {"id": job.id, "status": word, "result": None, "progress": None, "details": None, "preview": None}
    if word == st.BFL_READY:
        name = "video" if job.video else "image"
        sample = {"sample": file_url(config, job.id, name), "prompt": job.prompt, "seed": job.seed}
        if job.video:
            sample["duration"] = job.video.get("duration")
        if job.draft_cache:
            sample["draft_cache"] = file_url(config, job.id, "draft_cache")
        body["result"] = sample
    elif job.terminal:
        body["details"] = job.error or {"code": "bfl_error", "message": f"the task ended {job.status}"}
    else:
        body["progress"] = job.progress
    return body


def callback(config: Config, job: Job, now: float) -> dict:
    """What BFL would POST to the app's ``webhook_url`` about the terminal job: ``{id, status, result, progress,
    details}`` as ``get_result`` answers them (a callback has no ``preview``), the ``timestamp`` of this call
    (ISO 8601, UTC), and for a job that did not end ``Ready`` the top-level ``error`` (the job's error code) and
    ``message`` of BFL's failure callbacks, which BFL's guide reads."""
    body = result(config, job)
    del body["preview"]
    if body["status"] != st.BFL_READY:
        body["error"], body["message"] = body["details"]["code"], body["details"]["message"]
    body["timestamp"] = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return body
