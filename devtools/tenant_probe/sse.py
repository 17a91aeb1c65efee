"""Streams as the stream rows open them: one read in a thread of its own, keeping every byte and job event it got,
and a raw socket that sends a stream's request and then never reads (the slow reader)."""

from __future__ import annotations

import json
import socket
import threading
import time

import requests

from .harness import Api, local_session


class Collector:
    """A stream read to its end in a thread (on a connection of its own): its status, its raw bytes and the job
    events it carried, as they come."""

    def __init__(self, api: Api, path: str, headers: dict | None = None):
        self.lock = threading.Lock()
        self.raw = bytearray()
        self.jobs: list[dict] = []
        self.ended = threading.Event()
        self.status = 0
        sent = dict(headers or {})
        if api.token:
            sent["Authorization"] = f"Bearer {api.token}"
        self.session = local_session()
        self.response: requests.Response | None = None
        opened = threading.Event()

        def read() -> None:
            try:
                self.response = self.session.get(api.base + path, headers=sent, stream=True, timeout=(5, 40))
                self.status = self.response.status_code
                opened.set()
                for line in self.response.iter_lines():
                    with self.lock:
                        self.raw += line + b"\n"
                        if line.startswith(b"data: "):
                            self.jobs.append(json.loads(line[6:]))
            except (requests.RequestException, ValueError, AttributeError):
                pass  # closed by the row (or cut off): what came is kept
            finally:
                opened.set()
                self.ended.set()

        threading.Thread(target=read, daemon=True).start()
        opened.wait(15)

    def ids(self) -> set[str]:
        with self.lock:
            return {job.get("id", "") for job in self.jobs}

    def statuses_of(self, job_id: str) -> list[str]:
        with self.lock:
            return [job.get("status", "") for job in self.jobs if job.get("id") == job_id]

    def text(self) -> bytes:
        with self.lock:
            return bytes(self.raw)

    def close(self) -> None:
        if self.response is not None:
            self.response.close()
        self.session.close()


def silent_stream(base: str, token: str, path: str) -> tuple[socket.socket, int]:
    """A stream's request on a socket that reads its answer's status line and nothing after: a reader that never
    reads. The socket (to close at the row's end) and the status."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
                 f"Accept: text/event-stream\r\n\r\n".encode())
    head = b""
    deadline = time.monotonic() + 10
    while b"\r\n" not in head and time.monotonic() < deadline:
        got = sock.recv(1)  # one byte at a time: nothing past the status line is taken from the socket
        if not got:
            break
        head += got
    parts = head.split(b" ")
    return sock, int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def raw_request(base: str, lines: list[str], body: bytes = b"") -> tuple[int, bytes]:
    """A request written as it is (``lines``: its request line and headers, repeats and odd bytes kept as given):
    the answer's status and body (what came within 10 s)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = "\r\n".join([*lines, f"Host: {host}:{port}", f"Content-Length: {len(body)}", "Connection: close", "", ""])
        sock.sendall(head.encode() + body)  # UTF-8: a header of other digits goes as their bytes
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    status_line, _, rest = answer.partition(b"\r\n")
    parts = status_line.split(b" ")
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), rest.partition(b"\r\n\r\n")[2]
