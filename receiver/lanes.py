"""Whose line a request waits in for a work permit (``fair_permits``), told from its head alone: no Redis, no body.

A lane per app key, one for the admin tokens, one for BFL's callbacks, one for signed file links, one for the
dashboard's sessions, and one for everything else. A key's lane is known only once its secret was checked (``auth``
remembers it here): a made-up or unchecked token waits in the ``unknown`` lane, so inventing tokens buys no turns.
A signed link of a job whose key this process has seen (``remember_link``, as the link was first opened) waits in
that key's lane for links: one key's flood of links takes turns with the others' instead of filling the shared
``links`` lane, and its refusals are repeated from memory, slowly, like a key's own (``bulkheads``).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from typing import Iterable

from .auth import is_admin_token, token_in

BFL = "bfl"
ADMIN = "admin"
UNKNOWN = "unknown"
LINKS = "links"
DASHBOARD = "dashboard"
OTHER = "other"
# Secrets whose key is remembered (their digests): the least recently used forgotten first.
KNOWN_KEYS = 10_000
_CALLBACKS = "/webhooks/"
# Jobs whose key is remembered for their signed links: the least recently opened forgotten first.
KNOWN_LINKS = 10_000
# The job a file path names: /v1/jobs/{id}/image, /video, /poster, /draft_cache.
_JOB_FILE = re.compile(r"/v1/jobs/(job_[0-9A-Za-z]{1,40})/[a-z_]+")
_SESSION_COOKIE = "fluxhook_session="


class Lanes:
    """The lane of each request, and the app keys whose secrets were checked (by their digests, never the secrets)."""

    def __init__(self, api_tokens: Iterable[str]):
        self.api_tokens = tuple(api_tokens)
        self._known: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._links: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, secret: str, key_id: str, weight: int) -> None:
        """``secret`` was checked as ``key_id``'s, which has ``weight``: its requests wait in that key's lane."""
        with self._lock:
            self._known[_digest(secret)] = (f"key:{key_id}", weight)
            self._known.move_to_end(_digest(secret))
            while len(self._known) > KNOWN_KEYS:
                self._known.popitem(last=False)

    def remember_link(self, job_id: str, key_id: str | None) -> None:
        """Job ``job_id`` was opened by its signed link and is ``key_id``'s (None: an admin token's): its links wait in
        that key's lane for links (a job's key never changes)."""
        if key_id is None:
            return
        with self._lock:
            self._links[job_id] = f"link:{key_id}"
            self._links.move_to_end(job_id)
            while len(self._links) > KNOWN_LINKS:
                self._links.popitem(last=False)

    def of(self, environ: dict) -> tuple[str, int]:
        """(lane, weight) of the request whose WSGI ``environ`` this is."""
        if environ.get("PATH_INFO", "").startswith(_CALLBACKS):
            return BFL, 1
        token = token_in(lambda name: environ.get("HTTP_" + name.upper().replace("-", "_")))
        if token is not None:
            if is_admin_token(self.api_tokens, token):
                return ADMIN, 1
            with self._lock:
                return self._known.get(_digest(token), (UNKNOWN, 1))
        if "token=" in environ.get("QUERY_STRING", ""):
            job = _JOB_FILE.fullmatch(environ.get("PATH_INFO", ""))
            with self._lock:
                return (self._links.get(job.group(1), LINKS) if job else LINKS), 1
        if _SESSION_COOKIE in environ.get("HTTP_COOKIE", ""):
            return DASHBOARD, 1
        return OTHER, 1


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()
