"""Command line entry: `python -m simulator --host 127.0.0.1 --port 8900 ...`, or several accounts at once with
`--account eu=0 --account us=0:KEY ...` (each its own port, key, tasks, settings and stats)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from types import FrameType
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from .accounts import Account, check_unique, parse_account
from .app import create_app, simulator_of
from .settings import IMAGE_FORMATS, WEBHOOK_MODES, SimSettings


def _optional(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """argparse type accepting a value of `kind`, or none/null for 'unset'."""

    def parse(text: str) -> Any:
        return None if text.lower() in ("none", "null") else kind(text)

    parse.__name__ = getattr(kind, "__name__", "value")  # argparse names the type in errors
    return parse


def parse_args(argv: list[str] | None = None) -> SimSettings:
    """Turn command line flags into SimSettings (the accounts' starting values when --account is given)."""
    return parse_command(argv)[0]


def parse_command(argv: list[str] | None = None) -> tuple[SimSettings, list[Account]]:
    """Turn command line flags into SimSettings and the accounts to serve (none: one, on --port with --api-key)."""
    d = SimSettings()
    p = argparse.ArgumentParser(prog="python -m simulator", description="Local BFL FLUX API simulator")
    p.add_argument("--host", default=d.host)
    p.add_argument("--port", type=int, default=d.port, help="0 picks a free port")
    p.add_argument("--api-key", default=d.api_key)
    p.add_argument("--task-delay", type=_optional(float), default=d.task_delay,
                   help="seconds until a task completes; negative or 'none' keeps tasks Pending")
    p.add_argument("--pending-limit", type=_optional(float), default=d.pending_limit,
                   help="seconds a task kept Pending ([pending], or no --task-delay) runs at most, then ends as any "
                        "task does; 'none' (the default): until told")
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
    p.add_argument("--account", type=parse_account, action="append", default=[], metavar="NAME=PORT[:KEY]",
                   help="serve this account on its own port (0: a free one) with its own key (default "
                        "sim-NAME-key), tasks, settings and stats; repeatable. --port and --api-key are then unused, "
                        "the other flags are each account's starting settings")
    args = vars(p.parse_args(argv))
    accounts = args.pop("account")
    if accounts:
        problem = check_unique(accounts)
        if problem:
            p.error(problem)
        if args["public_url"]:
            p.error("--public-url names one endpoint: it cannot be every account's")
    return SimSettings(**{key.replace("-", "_"): value for key, value in args.items()}), accounts


def _servers(settings: SimSettings, accounts: list[Account]) -> list[tuple[str | None, BaseWSGIServer]]:
    """Bind one server per account (or the one of today's single account), each with an app and state of its own."""
    each = [(a.name, replace(settings, port=a.port, api_key=a.api_key)) for a in accounts] or [(None, settings)]
    servers = []
    for name, account_settings in each:
        app = create_app(account_settings)
        server = make_server(account_settings.host, account_settings.port, app, threaded=True)
        simulator_of(app).bind(server.port)
        servers.append((name, server))
    return servers


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT."""
    settings, accounts = parse_command(argv)
    if not settings.verbose:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    # Before the ready lines: a SIGTERM sent as soon as they are read must stop the servers cleanly.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    servers = _servers(settings, accounts)
    for name, server in servers:
        if name is not None:
            print(f"simulator account {name} listening on http://{settings.host}:{server.port}", flush=True)
    # Last, and the first account's address: what the dev run and the tests wait for, whatever the accounts.
    print(f"simulator listening on http://{settings.host}:{servers[0][1].port}", flush=True)

    # Each server looks for its shutdown every 50 ms (http.server's 0.5 s made every stop of a simulator wait that).
    threads = [threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                name=f"account-{name or 'default'}") for name, server in servers]
    for thread in threads:
        thread.start()
    try:
        stopping.wait()
    finally:
        # shutdown() waits for serve_forever() to return: here, on the main thread, while the servers' own end.
        for _, server in servers:
            server.shutdown()
        for thread in threads:
            thread.join()
        for _, server in servers:
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
