"""Variants of a job's stored image or video poster over HTTP: ``w``, ``format`` and ``q`` on
``GET /v1/jobs/{id}/image`` and ``/poster``, the variant found or made once (``lifecycle/variants.py``, in this
process's ``variant_makers``) and answered as a stored file is: a strong ``ETag`` (its bytes' sha256) and ``304``,
a redirect to the store where the store serves its own files (S3), else its bytes streamed, written while the reader
reads without a work permit (``answers.paced``).

A signed link's answer may be kept by any cache for a year (``public, max-age=31536000, immutable``): the bytes behind
one URL never change (a variant is made once; its URL names the job, the width, the format and the quality), and the
URL itself is the secret, so a CDN that keys its cache by the whole URL gives it only to who holds the link. A bearer
token's answer stays ``private``: its URL opens nothing without the token, so no shared cache may keep it. An
``auto`` answer depends on the request's ``Accept`` and says so (``Vary: Accept``)."""

from __future__ import annotations

from flask import Response, g, request, send_file
from werkzeug.http import is_resource_modified
from werkzeug.wrappers import Response as BaseResponse

from fluxhook.core import signing
from fluxhook.core import variants as rules
from fluxhook.core.errors import Gone
from fluxhook.core.job import Job
from fluxhook.core.variants import Ask, Variant
from fluxhook.lifecycle import variants
from fluxhook.store.owners import owner_of
from fluxhook.store.variants import Stored

from . import answers
from .context import services
from .store_redirects import storage_redirect
from .variant_makers import variant_makers

SIGNED = "public, max-age=31536000, immutable"
BEARER = "private, max-age=3600, immutable"


def asked(source_name: str) -> Ask | None:
    """The variant this request's query asks for of the job's ``source_name`` file; None when it names none (the
    original is answered). Beside the variant's parameters, the query may hold the signed link's own, and nothing
    else."""
    return rules.asked(request.args.items(multi=True), where=f"GET /v1/jobs/{{id}}/{source_name}",
                       beside=signing.LINK_PARAMETERS)


def answer(job: Job, source_name: str, ask: Ask) -> BaseResponse:
    """The answer to a request for ``ask`` of the job's stored ``source_name`` file (``image`` or ``poster``), which
    the caller found stored."""
    source = variants.source_of(job, source_name)
    if source is None:
        raise Gone(f"the job has no stored {source_name}")
    variant = rules.resolve(ask, source.width, source.content_type, request.headers.get("Accept"))
    # The request log names the route, never the query (it holds the token): which variant was answered is what a
    # CDN's operator counts, each variant's bytes served once a link window when the cache in front works.
    g.log_detail = {"variant": f"{variant.width}w {variant.format}"}
    svc = services()
    found = variants.stored(svc, job, source, variant)
    if found is not None:
        served = _served(job, found, variant)
        if served is not None:
            return served
        svc.store.variants.forget(job.id, found.key)  # recorded, its bytes gone from the store: made again
    makers = variant_makers()
    with makers.waiting(owner_of(job.key_id)):
        made = variants.made(svc, job, source, variant, makers)
    served = _served(job, made, variant)
    if served is None:
        raise Gone(f"the {source_name}'s variant just made is missing from the store")
    return served


def _served(job: Job, stored: Stored, variant: Variant) -> BaseResponse | None:
    """The stored variant's answer: a 304, a redirect to the store, or its bytes; None when the store lacks them."""
    if not is_resource_modified(request.environ, etag=stored.sha256):
        # Answered before the store is asked: a cached copy costs no storage request.
        response = Response(status=304)
        response.set_etag(stored.sha256)
        return _headers(response, variant)
    moved = storage_redirect(stored.key, variant.content_type)
    if moved is not None:
        if variant.auto:
            moved.headers["Vary"] = "Accept"
        return moved
    file = services().storage.open(stored.key)
    if file is None:
        return None
    response = send_file(file, mimetype=variant.content_type, etag=stored.sha256, conditional=True)
    if response.status_code == 200:
        response.content_length = stored.size  # send_file cannot know it from an open file
    return answers.paced(_headers(response, variant), answers.scope_of(job.key_id))


def _headers(response: Response, variant: Variant) -> Response:
    response.headers["Cache-Control"] = SIGNED if g.get("signed_link") else BEARER
    response.headers["X-Content-Type-Options"] = "nosniff"
    if variant.auto:
        response.headers["Vary"] = "Accept"
    return response
