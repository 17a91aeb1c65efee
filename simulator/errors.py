"""The one exception type request handlers turn into HTTP answers."""

from __future__ import annotations

from typing import Any


class Rejected(Exception):
    """A request the simulator refuses, with the HTTP answer to give."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}
