"""Signed delivery of images, videos and draft caches (with fault injection) and a redirect helper."""

from __future__ import annotations

import time
from collections.abc import Iterator

from flask import Blueprint, Response, redirect, request
from flask.typing import ResponseReturnValue

from .images import CONTENT_TYPES
from .signing import is_expired
from .state import DRAFT_EXTENSION, current_simulator
from .videos import padded_size, stream_padded

bp = Blueprint("delivery", __name__)


def _auth_failed() -> Response:
    return Response("AuthenticationFailed", status=403, content_type="text/plain")


@bp.get("/delivery/<filename>")
def deliver(filename: str) -> ResponseReturnValue:
    """Serve a task's image if the link's signature and expiry check out."""
    sim = current_simulator()
    plan = sim.delivery_plan()
    # A link is judged by when its request came, not by when its slow delivery got round to it.
    arrived = time.time()
    if plan.delay:
        time.sleep(plan.delay)  # simulated storage latency, not a wait for a condition
    if plan.fail_status is not None:
        return Response(f"Simulated failure {plan.fail_status}", status=plan.fail_status, content_type="text/plain")
    task_id, _, ext = filename.rpartition(".")
    exp, sig = request.args.get("exp", ""), request.args.get("sig", "")
    if not sim.signer.verify(task_id, exp, sig):
        return _auth_failed()
    if is_expired(int(exp), arrived):
        sim.count_expired_delivery()
        return _auth_failed()
    task = sim.deliverable(task_id, ext)
    if task is None:
        return Response("BlobNotFound", status=404, content_type="text/plain")
    if ext == DRAFT_EXTENSION:
        return Response(sim.draft_bytes(task), content_type="application/octet-stream")
    if task.is_video:
        video, target = sim.video(task)
        # Streamed: a video padded to hundreds of MB is never built in memory.
        return Response(stream_padded(video, target), content_type="video/mp4",
                        headers={"Content-Length": str(padded_size(video, target))}, direct_passthrough=True)
    data = sim.image_bytes(task)
    headers = {"Content-Length": str(len(data))}
    if plan.truncate:
        # Promise the full length, send half; the server then closes the connection.
        def half() -> Iterator[bytes]:
            yield data[: len(data) // 2]

        return Response(half(), content_type=CONTENT_TYPES[task.image_format], headers=headers)
    return Response(data, content_type=CONTENT_TYPES[task.image_format], headers=headers)


@bp.get("/redirect")
def redirect_to() -> ResponseReturnValue:
    """302 to `?to=`, for testing clients that follow redirects."""
    target = request.args.get("to")
    if not target:
        return {"detail": "missing 'to' query parameter"}, 400
    return redirect(target, code=302)
