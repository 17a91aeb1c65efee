"""Streams as the stream rows open them: one read in a thread of its own, keeping every byte and job event it got,
and a raw socket that sends a stream's request and then never reads (the slow reader)."""

from __future__ import annotations

import json
import socket
import threading
import time

from .harness import Api


class Collector:
    """A stream read to its end in a thread, on a socket of its own (which ``close`` shuts, waking the read): its
    status, its raw bytes and the job events it carried, as they come."""

    def __init__(self, api: Api, path: str, headers: dict | None = None):
        self.lock = threading.Lock()
        self.raw = bytearray()
        self.jobs: list[dict] = []
        self.sock, self.status = open_stream(api.base, api.token or "", path, headers)
        if self.status == 200:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        body, in_head = bytearray(), True
        try:
            while chunk := self.sock.recv(65536):
                body += chunk
                if in_head:
                    if b"\r\n\r\n" not in body:
                        continue
                    del body[:body.index(b"\r\n\r\n") + 4]  # the head's headers, after the status line
                    in_head = False
                data, ended, body = dechunk(body)
                self._take(data)
                if ended:
                    return
        except OSError:
            pass  # closed by the row (or cut off): what came is kept

    def _take(self, data: bytes) -> None:
        with self.lock:
            self.raw += data
            lines = bytes(self.raw).split(b"\n")
            self.jobs = [json.loads(line[6:]) for line in lines if line.startswith(b"data: ")]

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
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def dechunk(body: bytearray) -> tuple[bytes, bool, bytearray]:
    """The whole chunks at the start of a chunked body: their data, whether the last chunk came, and the rest."""
    data, rest = bytearray(), bytes(body)
    while b"\r\n" in rest:
        size_line, _, after = rest.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            return bytes(data), True, bytearray()
        if size == 0:
            return bytes(data), True, bytearray()
        if len(after) < size + 2:
            break
        data += after[:size]
        rest = after[size + 2:]
    return bytes(data), False, bytearray(rest)


def open_stream(base: str, token: str, path: str, headers: dict | None = None) -> tuple[socket.socket, int]:
    """A stream's request on a socket of its own, its answer read up to the status line: the socket and the status."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sent = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream", **(headers or {})}
    head = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n".encode()
    for name, value in sent.items():
        head += name.encode() + b": " + (value if isinstance(value, bytes) else value.encode()) + b"\r\n"
    sock.sendall(head + b"\r\n")
    line = b""
    deadline = time.monotonic() + 10
    try:
        while b"\r\n" not in line and time.monotonic() < deadline:
            got = sock.recv(1)  # one byte at a time: nothing past the status line is taken from the socket
            if not got:
                break
            line += got
    except OSError:
        pass
    sock.settimeout(40)
    parts = line.split(b" ")
    return sock, int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def silent_stream(base: str, token: str, path: str) -> tuple[socket.socket, int]:
    """A stream's request on a socket that reads its answer's status line and nothing after: a reader that never
    reads. The socket (to close at the row's end) and the status."""
    return open_stream(base, token, path)


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
