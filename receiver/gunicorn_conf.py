"""gunicorn settings for the ``web:`` process (``gunicorn -c python:receiver.gunicorn_conf``)."""

import gc
import logging
import os
import socket
import sys
import threading

from gunicorn import glogging
from gunicorn import util as gunicorn_util

from fluxhook.core.config import DEFAULT_PORT, field_default
from receiver.bulkheads import ANSWER_ROOM, BATCH_MAKING_ROOM, BFL_CALL_ROOM, TARPIT_ROOM, WAITING_ROOM
from receiver.request_assembly import refusal
from receiver.variant_makers import VARIANT_ROOM


def _whole(name: str, default: str) -> int:
    """A positive whole number from the environment (empty counts as unset); a bad one stops gunicorn."""
    raw = (os.environ.get(name) or "").strip() or default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        print(f"fluxhook web: configuration error: {name}: must be a whole number from 1 to 65535, got {raw!r}",
              file=sys.stderr, flush=True)
        os._exit(2)
    return int(raw)


bind = f"0.0.0.0:{_whole('PORT', str(DEFAULT_PORT))}"
# Threads serve the many short callback and API requests, processes use both cores; each request is received whole by
# the worker's main loop before a thread serves it, so slow or stalled clients hold no thread (docs/hostile-clients.md).
worker_class = "receiver.buffering_worker.BufferingWorker"
workers = _whole("WEB_CONCURRENCY", "2")
# WEB_THREADS work at once (receiver/bulkheads.py holds the rest back); the others are the rooms
# for requests waiting on their job (Prefer: wait), on BFL, for a turn to make a batch or for a variant to be made
# (receiver/variant_makers.py), which hold a thread but no CPU.
threads = (_whole("WEB_THREADS", str(field_default("web_threads"))) + WAITING_ROOM + BFL_CALL_ROOM + BATCH_MAKING_ROOM
           + ANSWER_ROOM + TARPIT_ROOM + VARIANT_ROOM)
# A socket per worker (SO_REUSEPORT): the kernel spreads connections over the workers. With one
# shared socket, the first worker to wake took every keep-alive connection of a burst and the other idled.
# A second gunicorn could then share the port too: on_starting refuses a port already listened on.
reuse_port = True
timeout = 30
graceful_timeout = 25
# No request-line limit of gunicorn's own (at its 4094 bytes, a search's long `q` would be answered 414, not the API's
# 400): the worker bounds the whole head instead, at request_assembly.MAX_HEAD_BYTES (past it, 414 uri_too_long).
limit_request_line = 0
keepalive = 5
# Off: request paths carry webhook tokens and image signatures; the app logs route patterns instead.
accesslog = None


class Logger(glogging.Logger):
    """gunicorn's logger without its access log, which the app's one line per request replaces."""

    # With logconfig_dict set, gunicorn counts its access log as on and builds every request's
    # atoms for a logger with no handler, a share of every callback's CPU time for nothing.
    # (With a logger_class of its own, gunicorn never picks its statsd logger: /metrics serves instead.)
    access_log_enabled = False

    def info(self, msg, *args, **kwargs):
        # With reuse_port each worker opens its own socket, so the arbiter has none to name and its
        # "Listening at: %s (%s)" line would show an empty address: name the configured ones.
        if msg.startswith("Listening at:") and args and not args[0]:
            args = (",".join(_address(a) for a in self.cfg.address), *args[1:])
        super().info(msg, *args, **kwargs)


logger_class = Logger


def _address(address) -> str:
    """``host:port`` of a bound TCP address, or a Unix socket's path."""
    if isinstance(address, tuple):
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"unix:{address}"

# gunicorn's own lines (boot, worker exits) as JSON too, like every other log line.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": "{asctime}{levelname}{name}{message}",
        "style": "{",
        "datefmt": "%Y-%m-%dT%H:%M:%S%z",
        "rename_fields": {"asctime": "ts", "levelname": "level", "name": "logger", "message": "event"},
    }},
    # Scrubs URL credentials from gunicorn's lines (on_starting adds the configured secrets).
    "filters": {"redact": {"()": "fluxhook.core.logs.RedactSecrets"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout",
                            "filters": ["redact"]}},
    "root": {"handlers": ["stdout"], "level": "INFO"},
    "loggers": {"gunicorn.error": {"handlers": ["stdout"], "level": "INFO", "propagate": False}},
}


def on_starting(server):
    """Validate the configuration before any worker forks; a bad setting stops gunicorn for good."""
    from fluxhook.core.config import Config
    from fluxhook.core.errors import ConfigError
    from fluxhook.core.logs import RedactSecrets, config_secrets, configure_logging

    try:
        config = Config.from_env()
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"fluxhook web: configuration error: {problem}", file=sys.stderr, flush=True)
        # os._exit: a SystemExit here would be reported by gunicorn with a traceback.
        os._exit(2)
    secrets = config_secrets(config)
    configure_logging(config.log_level, secrets)
    # gunicorn's own lines go out through logconfig_dict's handler, not the app's.
    for handler in logging.getLogger("gunicorn.error").handlers:
        handler.addFilter(RedactSecrets(secrets))
    for warning in config.warnings():
        logging.getLogger("fluxhook.core.config").warning(warning)
    _refuse_a_port_in_use(server.cfg.address)
    # Before any worker forks: they inherit it (gunicorn's one place that writes such answers).
    gunicorn_util.write_error = write_json_error


def write_json_error(sock, status_int, reason, mesg):
    """gunicorn's answer to a request it refuses or fails outside the app (headers too large, bytes that are not HTTP):
    the API's JSON error, in the shape and codes of receiver/request_assembly.py's refusals, not gunicorn's HTML page."""
    gunicorn_util.write_nonblock(sock, refusal(status_int, reason))


SWITCH_INTERVAL = 0.0005


def post_worker_init(worker):
    """Freeze what the loaded app holds, so that the collector's full passes skip it: a full pass over every object
    of a loaded app stalls every thread of the worker while it runs."""
    gc.collect()
    gc.freeze()
    # A thread busy in Python (a search matching prompts, a batch's items checked) hands the interpreter lock on after
    # this long, not CPython's 5 ms, which a quick request of another caller waits after each socket or Redis read.
    sys.setswitchinterval(SWITCH_INTERVAL)
    # The app's services; none when gunicorn serves its own error app instead (a reload that failed to import).
    svc = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("fluxhook")
    if worker.age == 1 and svc is not None:
        # The first worker of this host says in the log when the host's clock is off Redis's, as a worker process
        # does: beside its requests (a thread), so a Redis slow to answer never holds them up.
        from fluxhook.lifecycle.readiness import log_clock
        threading.Thread(target=log_clock, args=(svc,), name="clock-check", daemon=True).start()


def _refuse_a_port_in_use(addresses) -> None:
    """Stop if something already listens where we would (``reuse_port`` would otherwise share the port with it)."""
    for address in addresses:
        if not isinstance(address, tuple):
            continue  # a Unix socket path: gunicorn checks it itself
        host, port = address[0], address[1]
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
            # SO_REUSEADDR, not SO_REUSEPORT: a port left in TIME_WAIT by a restart is free, a listener is not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                print(f"fluxhook web: cannot listen on {host}:{port}: {exc.strerror} (another web process?)",
                      file=sys.stderr, flush=True)
                os._exit(2)

# gunicorn 27's control socket lives at one per-user path: two instances on a host would fight over it.
control_socket_disable = True
