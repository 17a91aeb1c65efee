"""The dashboard at ``/``: sign in with an API token, see the overview, follow recent jobs live, read a job's story.

Server-rendered pages (``templates/dashboard``), the overview's charts drawn as inline SVG on the server (``charts``),
and one small script (``static/dashboard.js``) that follows a page's events and reads its ``/live/...`` JSON to update it
in place. No build step and nothing from a CDN: it works on a machine without internet. Everything but the sign-in page
needs a signed-in session (see ``dashboard_session``); the session grants nothing on ``/v1``.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from flask import Blueprint, Response, g, redirect, render_template, request, url_for

from fluxhook.core import job as st
from fluxhook.core.errors import InvalidRequest
from fluxhook.core.job import Job, is_job_id
from fluxhook.core.job_filters import parse_listing
from fluxhook.credits import reports
from fluxhook.credits.figures import format_credits
from fluxhook.lifecycle import accounts_view, notifications, sweep
from fluxhook.lifecycle.removal import remove_job
from fluxhook.lifecycle.steps import timeline, waits
from fluxhook.lifecycle.steps.callers import is_key_id, key_id_in
from fluxhook.lifecycle.watching import watch
from fluxhook.media.thumbnails import CONTENT_TYPE as THUMBNAIL_TYPE

from . import dashboard_session as auth
from .context import services
from .dashboard_overview import DEFAULT_RANGE, RANGES, overview_page, running_batches, storage_panel
from .dashboard_view import LIVE_BADGE, api_examples, detail, notify_note, row
from .errors import error_response

bp = Blueprint("dashboard", __name__)
log = logging.getLogger("fluxhook.dashboard")

PAGE_SIZE = 25
# The newest batches the overview looks among for those running.
RECENT_BATCHES = 10
# Thumbnails are at most a few tens of KiB; anything bigger is not one of ours.
MAX_THUMBNAIL_BYTES = 1024 * 1024
_OPEN = ("dashboard.sign_in_form", "dashboard.sign_in")
_PAGES = ("dashboard.page", "dashboard.jobs", "dashboard.job_page", "dashboard.keys", "dashboard.batches",
          "dashboard.batch_page")


@bp.before_request
def require_session():
    if request.endpoint in _OPEN or auth.signed_in():
        return None
    if request.endpoint in _PAGES:
        return redirect(url_for("dashboard.sign_in_form", next=request.full_path.rstrip("?")))
    return error_response(401, "unauthorized", "sign in to the dashboard first")


@bp.after_request
def protect(response: Response) -> Response:
    """No inline script, no framing, no caching of job data by shared caches or the back button."""
    images = "'self' data:"
    if services().config.storage_url.startswith("s3:"):
        # The image endpoint may redirect to a presigned URL of the bucket.
        endpoint = services().config.s3_endpoint_url
        images += f" {_origin(endpoint)}" if endpoint else " https:"
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'self'; style-src 'self'; img-src {images}; media-src {images}; "
        "connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "dashboard.thumbnail":
        response.headers["Cache-Control"] = "no-store"
    return response


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# Credits read alike on every page and in `fluxhook doctor`: 1,000,000 and 12.50.
bp.add_app_template_filter(format_credits, "credits")


@bp.context_processor
def template_values():
    return {"csrf_token": auth.csrf_token, "signed_in": auth.signed_in, "statuses": st.STATUSES,
            "live_badge": LIVE_BADGE}


@bp.get("/signin")
def sign_in_form():
    if auth.signed_in():
        return redirect(_next_page())
    return render_template("dashboard/signin.html", next=_next_page(), error=None)


@bp.post("/signin")
def sign_in():
    """Open a session for a token from API_TOKENS; the token itself is never stored in the cookie."""
    if not auth.csrf_valid(request.form.get("csrf_token")):
        return render_template("dashboard/signin.html", next=_next_page(),
                               error="The sign-in form had expired. Please try again."), 400
    token = request.form.get("token", "")
    if not auth.token_accepted(token):
        log.warning("dashboard sign-in refused")
        return render_template("dashboard/signin.html", next=_next_page(), error=_refusal(token)), 401
    auth.sign_in(request.form["token"])
    log.info("dashboard sign-in")
    return redirect(_next_page(), 303)


def _refusal(token: str) -> str:
    """Why a sign-in was refused: an app key is told that only admin tokens open the dashboard (whether or not
    it is a real one: the answer says nothing of that)."""
    if key_id_in(token.strip()) is not None:
        return ("That is an app key: app keys call the API but cannot sign in to the dashboard. "
                "Sign in with an admin token, one of API_TOKENS.")
    return "That token is not one of this service's API tokens (API_TOKENS)."


@bp.post("/signout")
@auth.csrf_checked("the sign-out form did not carry this session's CSRF token")
def sign_out():
    auth.sign_out()
    return redirect(url_for("dashboard.sign_in_form"), 303)


def _next_page() -> str:
    """Where to go after signing in: a path on this site only (never //host or a full URL)."""
    target = request.values.get("next") or "/"
    if not target.startswith("/") or target.startswith("//") or "\\" in target or urlsplit(target).netloc:
        return "/"
    return target


# The job list's filters in its URL (as GET /v1/jobs takes them, ``core.job_filters``), and those its form has a
# box to type into: a mistake in one of those is shown in the form, a crafted status, model, batch or cursor goes
# back to the whole list. ``batch_id`` comes from a batch's page ("its items in the job list").
_FILTERS = ("status", "model", "key_id", "batch_id", "account", "q", "from", "to")
_TYPED = ("account", "q", "from", "to")


def _given() -> dict[str, str]:
    """The filters the URL sets (not empty), cursor aside."""
    return {name: request.args[name] for name in _FILTERS if request.args.get(name)}


def _listing() -> tuple[list[Job], str | None]:
    """The page of jobs the URL asks for; InvalidRequest for a filter that cannot be."""
    listing = parse_listing([*_given().items(), ("cursor", request.args.get("cursor", ""))])
    if listing.filter.key_id is not None and not is_key_id(listing.filter.key_id):
        raise InvalidRequest("not a key id")
    return services().jobs.list(listing.filter, PAGE_SIZE, listing.cursor)


def _counts() -> dict[str, int]:
    counts = services().store.snapshot(time.time()).by_status
    return {"all": sum(counts.values()), **counts}


@bp.get("/")
def page():
    """The overview, the first page after sign-in: jobs, latency and credits over ``?range=``, and the pools and
    BFL accounts now."""
    if request.args.get("status") or request.args.get("cursor"):
        # Bookmarks of the job list, which / used to be.
        return redirect(url_for("dashboard.jobs", status=request.args.get("status"),
                                cursor=request.args.get("cursor")))
    span = request.args.get("range", DEFAULT_RANGE)
    if span not in RANGES:
        return redirect(url_for("dashboard.page"))
    now = time.time()
    svc = services()
    data = reports.overview(svc, now, **RANGES[span])
    storage = storage_panel(sweep.backlog_now(svc, now), svc.store.pacer.level_now())
    recent, _ = svc.store.batches.list(None, every_owner=True, limit=RECENT_BATCHES)
    return render_template("dashboard/overview.html",
                           view=overview_page(data, span, now, accounts=accounts_view.accounts_now(svc, now),
                                              storage=storage, batches=running_batches(recent)))


@bp.get("/jobs", endpoint="jobs")
def job_list():
    """Recent jobs, newest first, filtered as GET /v1/jobs filters them, a page at a time."""
    given, problem = _given(), None
    try:
        jobs, next_cursor = _listing()
    except InvalidRequest as error:
        if not set(_TYPED) & given.keys():
            return redirect(url_for("dashboard.jobs"))  # an unknown status, a malformed model or a stale cursor
        jobs, next_cursor, problem = [], None, error.message
    key_id = given.get("key_id")
    key = services().store.app_keys.get(key_id) if key_id and is_key_id(key_id) else None
    deleted = request.args.get("deleted", "")
    # What every link of the list keeps: the filters but the status (a link of its own) and the cursor.
    kept = {name: value for name, value in given.items() if name != "status"}
    return render_template("dashboard/jobs.html", status=given.get("status"), model=given.get("model"),
                           cursor=request.args.get("cursor") or None, key_id=key_id, kept=kept, given=given,
                           problem=problem, key_name=key.name if key else key_id, key_choices=_key_choices(),
                           jobs=_rows(jobs), next_cursor=next_cursor, counts=_counts(),
                           deleted=deleted if is_job_id(deleted) else None)


def _key_choices() -> list[tuple[str, str]]:
    """The app keys the form's key box offers: (id, name), by name."""
    return sorted(((key.id, key.name) for key in services().store.app_keys.all()), key=lambda pair: pair[1].lower())


@bp.get("/live/jobs")
def live_jobs():
    """The list page's rows as JSON, for its live refresh."""
    jobs, next_cursor = _listing()
    return {"jobs": _rows(jobs), "next_cursor": next_cursor, "counts": _counts()}


def _rows(jobs: list[Job]) -> list[dict]:
    """The jobs as lines of the list, each queued one saying why it waits."""
    svc = services()
    return [row(job, wait, svc.config) for job, wait in zip(jobs, waits.of_jobs(svc, jobs), strict=True)]


def _job(job_id: str) -> Job | None:
    job = services().jobs.get(job_id)
    if job is not None:
        g.job_id = job.id
    return job


@bp.get("/jobs/<job_id>")
def job_page(job_id: str):
    """One job: its image, metadata, error, timeline and notifications."""
    job = _job(job_id)
    if job is None:
        return render_template("dashboard/missing.html", job_id=job_id if is_job_id(job_id) else None), 404
    svc = services()
    watch(svc, job.id)  # its page open: BFL's word reaches it live
    key = svc.store.app_keys.get(job.key_id) if job.key_id else None
    deliveries = notifications.of_job(svc, job)
    batch = svc.store.batches.get(job.batch_id) if job.batch_id else None
    return render_template("dashboard/job.html", job=_detail(job),
                           examples=api_examples(request.host_url.rstrip("/"), job),
                           key_id=job.key_id, key_name=key.name if key else job.key_id, deliveries=deliveries,
                           notify_note=notify_note(job, batch, has_messages=bool(deliveries)))


@bp.post("/jobs/<job_id>/delete")
@auth.csrf_checked("the delete form did not carry this session's CSRF token: reload the job's page and try again")
def delete_job(job_id: str):
    """Delete the job and its files, from the job page's confirmed form (CSRF-protected, like sign-out)."""
    job = _job(job_id)
    if job is None:
        return render_template("dashboard/missing.html", job_id=job_id if is_job_id(job_id) else None), 404
    remove_job(services(), job.id)
    log.info("job deleted from the dashboard", extra={"job_id": job.id})
    return redirect(url_for("dashboard.jobs", deleted=job.id), 303)


@bp.get("/live/jobs/<job_id>")
def live_job(job_id: str):
    """The job page's contents as JSON, for its live refresh."""
    job = _job(job_id)
    if job is None:
        return error_response(404, "job_not_found", "no such job (it may have been deleted)")
    watch(services(), job.id)  # the open page's refresh keeps it watched
    return {"job": _detail(job)}


def _detail(job: Job) -> dict:
    """Everything the job page shows: the job, its timeline, and why it waits if it does."""
    svc = services()
    return detail(svc.config, job, timeline.recent(svc.store.timeline, job.id), waits.of(svc, job))


@bp.get("/jobs/<job_id>/thumbnail")
def thumbnail(job_id: str):
    """The small preview the worker made when it stored the image."""
    job = _job(job_id)
    file = services().storage.open(job.thumbnail_key) if job is not None and job.thumbnail_key else None
    if file is None:
        return error_response(404, "not_found", "this job has no thumbnail")
    with file:
        data = file.read(MAX_THUMBNAIL_BYTES + 1)
    if len(data) > MAX_THUMBNAIL_BYTES:
        return error_response(404, "not_found", "this job has no thumbnail")
    response = Response(data, mimetype=THUMBNAIL_TYPE)
    # A job's thumbnail never changes: it is made once, with the image.
    response.headers["Cache-Control"] = "private, max-age=86400, immutable"
    return response
