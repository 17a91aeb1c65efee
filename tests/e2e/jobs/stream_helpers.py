"""Reading text/event-stream answers in the stream tests: each block of lines as one event."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import requests


@dataclass
class Event:
    """One block of a stream: its event name, id and data (JSON), and its comment lines."""

    event: str | None = None
    id: str | None = None
    data: dict | None = None
    comments: list[str] = field(default_factory=list)
    retry: int | None = None


class EventStream:
    """An open stream, read block by block (``requests`` with ``stream=True``)."""

    def __init__(self, response: requests.Response):
        self.response = response
        self.status_code = response.status_code
        self._lines = response.iter_lines(decode_unicode=True) if response.status_code == 200 else iter(())

    def next(self) -> Event | None:
        """The next block; None once the stream has ended."""
        block = Event()
        seen = False
        for line in self._lines:
            if line == "":
                if seen:
                    return block
                continue
            seen = True
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "":
                block.comments.append(value)
            elif name == "event":
                block.event = value
            elif name == "id":
                block.id = value
            elif name == "data":
                block.data = json.loads(value)
            elif name == "retry":
                block.retry = int(value)
        return block if seen else None

    def next_job(self) -> Event | None:
        """The next ``job`` event (comments and ``retry`` passed over); None once the stream has ended."""
        while (block := self.next()) is not None:
            if block.event == "job":
                return block
        return None

    def jobs_until(self, done, limit: float = 30.0) -> list[Event]:
        """``job`` events until ``done(event)`` holds for one (that one included)."""
        got: list[Event] = []
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            block = self.next_job()
            if block is None:
                break
            got.append(block)
            if done(block):
                return got
        raise AssertionError(f"stream ended or timed out after {[e.data and e.data['status'] for e in got]}")

    def close(self) -> None:
        self.response.close()


def open_stream(api, path: str, *, headers: dict | None = None, read_timeout: float = 25.0) -> EventStream:
    """GET a stream of ``api``'s service with its token, on a connection of its own (never one of ``api``'s pool,
    which a stream cut off mid-answer would leave unusable)."""
    session = requests.Session()
    session.headers.update(api.http.headers)
    response = session.get(api.base_url + path, headers=headers or {}, stream=True, timeout=(5, read_timeout))
    return EventStream(response)
