"""A's flood, in a process of its own (``python -m devtools.tenant_probe.flood CONFIG``, told ``on``, ``off`` and
``quit`` on its stdin), so B's timings in the same row are not A's client's interpreter lock. Rows 41-45 and 48-51
drive it."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import queue
import select
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from typing import Any

from .harness import BOUNDABLE, Api, settle

# Seconds a connection honouring Retry-After waits at most: it stays in the flood, as a client that retries does.
HONOURED = 5.0
# Seconds a head-first request waits for an answer to its head before it sends its body: a refusal from the head
# comes within milliseconds, so one that waits this long was not refused from its head.
HEAD_WAIT = 2.0
CHUNK = 65536


class Flood:
    """A's flood in a process of its own (``flood_main``): ``on`` and ``off`` per attack window (``off`` waits, up
    to ``drain`` s, until what A has in flight is answered: the next window alone is alone), then its answers."""

    drain = 20.0

    def __init__(self, api: Api, **config: Any):
        config = {"base": api.base, "token": api.token, **config}
        self.process = subprocess.Popen([sys.executable, "-m", __name__, json.dumps(config)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.process.stdout], daemon=True).start()
        self.drains: list[float] = []
        self.offs = self.idles = 0
        if self.next_line(60) != "ready":  # its body built, its imports done
            raise RuntimeError(f"A's flooding process did not start (exit {self.process.poll()})")

    def next_line(self, timeout: float) -> str:
        try:
            return self.lines.get(timeout=timeout).strip()
        except queue.Empty:
            return ""

    def tell(self, word: str) -> None:
        self.process.stdin.write(word + "\n")
        self.process.stdin.flush()

    def on(self, n: int = 0) -> None:
        self.tell("on")

    def off(self, n: int = 0) -> None:
        """A stops, and what it has in flight is answered: the child says ``idle`` once per ``off`` (a late one,
        after an earlier wait ran out, is not this one's)."""
        started, self.offs = time.monotonic(), self.offs + 1
        self.tell("off")
        while self.idles < self.offs and time.monotonic() < started + self.drain:
            self.idles += self.next_line(max(0.0, started + self.drain - time.monotonic())) == "idle"
        self.drains.append(time.monotonic() - started)

    def result(self) -> dict:
        """Every answer A got, by status, and per window; its cancels (batches) and how long they took."""
        self.tell("quit")
        line = self.next_line(180)
        while line == "idle":  # those of offs whose wait ran out
            line = self.next_line(180)
        self.process.wait(timeout=60)
        return json.loads(line) if line else {"statuses": {}, "windows": [], "cancels": {}, "took": {}, "sent": []}


def flood_main(config: dict) -> None:
    """The flooding process: ``connections`` threads, each on a keep-alive connection of its own, sending ``method
    path`` (``items`` > 0: a batch of that many, each 202 canceled at once) while told ``on``."""
    host, port = config["base"].removeprefix("http://").split(":")
    # No token: the paths are signed links, which carry their own.
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {config['token']}"}
                                                      if config.get("token") else {})
    body = None
    if config.get("items"):
        pad = "x" * config.get("prompt_chars", 0)
        body = json.dumps({"model": "flux-2-pro", "items": [{"input": {"prompt": f"A's flood item {n} {pad}",
                                                                        **BOUNDABLE}}
                                                           for n in range(config["items"])]}).encode()
    on, quit_ = threading.Event(), threading.Event()
    lock, windows, cancels, busy = threading.Lock(), [Counter()], Counter(), [0]
    paths = itertools.cycle(config["paths"]) if config.get("paths") else None  # each asked in turn (new variants)
    took: dict[str, list[float]] = {"made": [], "canceled": []}  # seconds of A's 202s, of its cancels
    sent: list[int] = []  # head_first: the bytes of each body sent before its answer came

    def send(connection: http.client.HTTPConnection, method: str, path: str, data: bytes | None):
        connection.request(method, path, body=data, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read(), answer.getheader("Retry-After")

    def flood() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        while not quit_.is_set():
            if not on.wait(0.1):
                continue
            with lock:
                busy[0] += 1
            status = 0
            try:
                clock = time.monotonic()
                with lock:
                    path = next(paths) if paths else config["path"].replace("{fresh}", uuid.uuid4().hex[:8])
                if config.get("head_first"):
                    status, answer, retry, early = head_first(host, int(port), headers, path, body or b"")
                    with lock:
                        sent.append(early)
                else:
                    status, answer, retry = send(connection, config.get("method", "GET"), path, body)
                if status == 202 and body:  # A's own cleanup, and room under its queued limit for the next
                    took["made"].append(time.monotonic() - clock)
                    clock = time.monotonic()
                    cancel = send(connection, "POST", f"/v1/batches/{json.loads(answer)['id']}/cancel", None)[0]
                    with lock:
                        cancels[cancel] += 1
                        took["canceled"].append(time.monotonic() - clock)
            except (OSError, http.client.HTTPException, ValueError, KeyError):
                status, retry = (202 if status == 202 else 0), None  # a batch made whose cancel was cut counts made
                connection.close()
            with lock:
                windows[-1][status] += 1
                busy[0] -= 1
            if config.get("honour") and retry:  # as a well-behaved client does, a few seconds at most
                quit_.wait(min(float(retry), HONOURED))
            elif config.get("head_first"):
                pass  # at once again: refused from its head, A's next costs the web as little
            elif body and status == 429:  # queue_full: A's cancels make room
                time.sleep(min(float(retry or 1), 1.0))
            elif body and status == 503:  # batches_busy: at once again, as the attacker did
                time.sleep(0.1)

    def say_idle() -> None:
        settle(lambda: busy[0] == 0, 30, interval=0.05)
        print("idle", flush=True)

    threads = [threading.Thread(target=flood, daemon=True) for _ in range(config["connections"])]
    for thread in threads:
        thread.start()
    print("ready", flush=True)
    for line in sys.stdin:
        word = line.strip()
        if word == "on":
            with lock:
                if windows[-1]:
                    windows.append(Counter())
            on.set()
        elif word == "off":  # "idle" once what is in flight is answered; the next "on" is not held back meanwhile
            on.clear()
            threading.Thread(target=say_idle, daemon=True).start()
        elif word == "quit":
            break
    on.clear()
    settle(lambda: busy[0] == 0, 150)  # what is in flight is answered (and a batch made, canceled)
    quit_.set()
    total = sum(windows, Counter())
    print(json.dumps({"statuses": dict(total), "windows": [dict(w) for w in windows if w],
                      "cancels": dict(cancels), "took": took, "sent": sent}), flush=True)


def head_first(host: str, port: int, headers: dict, path: str, body: bytes,
               head_wait: float = HEAD_WAIT) -> tuple[int, bytes, str | None, int]:
    """A POST on a connection of its own whose head goes first: its body follows, a piece at a time, only while no
    answer has come (as a client sending ``Expect: 100-continue`` would; ``head_wait`` 0: at once). Its status (0:
    none), answer, Retry-After,
    and the bytes of its body sent before the answer."""
    early, answer = 0, b""
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    with socket.create_connection((host, port), timeout=30) as sock:
        try:
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{head}Content-Length: {len(body)}\r\n"
                         "Connection: close\r\n\r\n".encode())
            waited = select.select([sock], [], [], head_wait)[0]
            while not waited and early < len(body):
                sock.sendall(body[early:early + CHUNK])
                early = min(len(body), early + CHUNK)
                waited = select.select([sock], [], [], 0)[0]
        except OSError:
            pass
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    top, _, rest = answer.partition(b"\r\n\r\n")
    parts = top.split(b" ", 2)
    retry = next((line.split(b":", 1)[1].strip().decode() for line in top.split(b"\r\n")
                  if line.lower().startswith(b"retry-after:")), None)
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), rest, retry, early


if __name__ == "__main__":
    flood_main(json.loads(sys.argv[1]))
