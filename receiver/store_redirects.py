"""A stored file answered by a redirect to the store's own short-lived URL of it, where the store serves its own
files (S3, with ``S3_IMAGE_DELIVERY=redirect``): the bucket sends the bytes (and its own ranges), not the web."""

from __future__ import annotations

from flask import redirect
from werkzeug.wrappers import Response as BaseResponse

from .context import services

# Lifetime of the presigned URL an image's answer redirects to: the redirect is followed at once.
STORAGE_URL_MAX_SECONDS = 300


def storage_redirect(key: str, content_type: str, max_seconds: int = STORAGE_URL_MAX_SECONDS) -> BaseResponse | None:
    """A redirect to a short-lived URL of the stored file, when the store serves its own (S3) and is told to."""
    svc = services()
    if svc.config.s3_image_delivery != "redirect":
        return None
    url = svc.storage.url_for(key, min(max_seconds, svc.config.image_url_ttl_seconds), content_type)
    if not url:
        return None  # files have none
    response = redirect(url, 302)
    response.headers["Cache-Control"] = "private, no-store"  # its target expires
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
