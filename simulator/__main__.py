"""Command line entry: `python -m simulator --host 127.0.0.1 --port 8900 ...`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from werkzeug.serving import make_server

from .app import create_app, simulator_of
from .settings import IMAGE_FORMATS, WEBHOOK_MODES, SimSettings


def _optional(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """argparse type accepting a value of `kind`, or none/null for 'unset'."""

    def parse(text: str) -> Any:
        return None if text.lower() in ("none", "null") else kind(text)

    parse.__name__ = getattr(kind, "__name__", "value")  # argparse names the type in errors
    return parse


def parse_args(argv: list[str] | None = None) -> SimSettings:
    """Turn command line flags into SimSettings."""
    d = SimSettings()
    p = argparse.ArgumentParser(prog="python -m simulator", description="Local BFL FLUX API simulator")
    p.add_argument("--host", default=d.host)
    p.add_argument("--port", type=int, default=d.port, help="0 picks a free port")
    p.add_argument("--api-key", default=d.api_key)
    p.add_argument("--task-delay", type=_optional(float), default=d.task_delay,
                   help="seconds until a task completes; negative or 'none' keeps tasks Pending")
    p.add_argument("--webhook-mode", choices=WEBHOOK_MODES, default=d.webhook_mode)
    p.add_argument("--retry-scale", type=float, default=d.retry_scale)
    p.add_argument("--url-ttl", type=int, default=d.url_ttl)
    p.add_argument("--max-active", type=int, default=d.max_active)
    p.add_argument("--max-active-kontext-max", type=int, default=d.max_active_kontext_max)
    p.add_argument("--credits", type=_optional(float), default=d.credits, help="omit for unlimited")
    p.add_argument("--image-format", choices=IMAGE_FORMATS, default=d.image_format)
    p.add_argument("--image-bytes", type=_optional(int), default=d.image_bytes)
    p.add_argument("--public-url", default=d.public_url)
    p.add_argument("--video-delay", type=float, default=d.video_delay,
                   help="seconds a video task takes through Pending, Reasoning and Generating")
    p.add_argument("--video-bytes", type=_optional(int), default=d.video_bytes,
                   help="pad delivered MP4s to this size (a free box)")
    p.add_argument("--max-active-video", type=int, default=d.max_active_video)
    p.add_argument("--scene-images", action="store_true", help="JPEG-like generations at the requested size")
    p.add_argument("--any-model", action="store_true",
                   help="accept model names BFL has no endpoint for (tests' made-up ones) instead of a 404")
    p.add_argument("--verbose", action="store_true", help="log every request")
    args = p.parse_args(argv)
    return SimSettings(**{key.replace("-", "_"): value for key, value in vars(args).items()})


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT."""
    settings = parse_args(argv)
    if not settings.verbose:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = create_app(settings)
    server = make_server(settings.host, settings.port, app, threaded=True)
    simulator_of(app).bind(server.port)
    print(f"simulator listening on http://{settings.host}:{server.port}", flush=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever() to return, so it cannot run on this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
