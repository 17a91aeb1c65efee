"""No key can hold the web by reading slowly (docs/operating.md "No key can hold the web"): the Procfile's processes, one web
process with its 4 work permits. Key A reads its own batch's ZIP from 16 sockets with a 4 KB receive buffer at 1 KB a
second; key B, meanwhile, reads its job, submits one and has BFL's callback for it acknowledged. A is written at most
``MAX_ANSWERS_PER_CALLER`` answers at once (the rest ``429``), each one is cut once its reader falls below
``MIN_ANSWER_RATE``, and what A held is A's to use again after."""

from __future__ import annotations

import io
import socket
import statistics
import threading
import time
import zipfile
from pathlib import Path

import pytest
import redis

from conftest import API
from devtools.processes import wait_until
from fluxhook.store.keys import KEYS
from helpers import stack_on_db
from key_helpers import make_key

DB = 8  # this module's stack
READERS = 16
MAX_ANSWERS = 4
ITEMS = 6
IMAGE_BYTES = 1_000_000


@pytest.fixture(scope="module")
def stack(redis_server, simulator, _spies, tmp_path_factory):
    with stack_on_db(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("slow-readers")), DB,
                     WEB_CONCURRENCY="1", MAX_ANSWERS_PER_CALLER=str(MAX_ANSWERS),
                     MAX_IMAGE_BYTES=str(2 * IMAGE_BYTES)) as running:
        yield running


class SlowReader:
    """A raw socket that asks for ``path`` and then takes 1 KB a second through a 4 KB receive buffer."""

    def __init__(self, base_url: str, path: str, token: str):
        host, port = base_url.removeprefix("http://").split(":")
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(60)
        self.sock.connect((host, int(port)))
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
        self.head = self.sock.recv(1024)
        if self.status != 200:
            self.head += self._rest_of_refusal()
        self.closed_at: float | None = None
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    @property
    def status(self) -> int:
        return int(self.head.split(b" ", 2)[1])

    def _rest_of_refusal(self) -> bytes:
        """A refusal's body, which may come in a segment of its own after its head."""
        answer = self.head
        while b"\r\n\r\n" not in answer and (piece := self.sock.recv(1024)):
            answer += piece
        head, _, body = answer.partition(b"\r\n\r\n")
        length = int(head.lower().partition(b"content-length:")[2].split(b"\r\n")[0] or 0)
        while len(body) < length and (piece := self.sock.recv(1024)):
            body += piece
        return (head + b"\r\n\r\n" + body)[len(self.head):]

    def _trickle(self) -> None:
        try:
            while self.sock.recv(1024):
                time.sleep(1)
        except OSError:
            pass
        self.closed_at = time.monotonic()
        self.sock.close()


def _batch_of(a: API) -> str:
    made = a.post("/v1/batches", json={"model": "flux-2-pro", "items": [
        {"input": {"prompt": f"a catalog shot {n}"}} for n in range(ITEMS)]})
    assert made.status_code == 202, made.text
    batch_id = made.json()["id"]
    ended = wait_until(lambda: (lambda x: x if x["status"] == "ended" else None)(a.get(f"/v1/batches/{batch_id}").json()),
                       timeout=90, message="A's batch ended")
    assert ended["counts"].get("stored") == ITEMS, ended["counts"]
    return batch_id


def _reads(b: API, job_id: str, n: int = 15) -> list[float]:
    took = []
    for _ in range(n):
        started = time.monotonic()
        assert b.get(f"/v1/jobs/{job_id}", timeout=5).status_code == 200
        took.append(time.monotonic() - started)
    return took


def _stored(b: API, prompt: str) -> dict:
    job = b.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": prompt}}).json()
    return wait_until(lambda: (lambda j: j if j["status"] == "stored" else None)(b.job(job["id"])), timeout=60,
                      interval=0.1, message=f"{prompt} stored")


def test_sixteen_slow_readers_of_a_keys_zip_hold_nothing_another_key_needs(stack, sim):
    # A ZIP of 6 MB: more than a socket's buffers take at once (Linux grows a send buffer up to 4 MB by default);
    # an answer that fits in them is written at once and holds nothing while its reader reads.
    sim.settings(image_bytes=IMAGE_BYTES)
    admin = API(stack.base_url)
    key_a, a = make_key(admin, name="a-slow-reader")
    _, b = make_key(admin, name="b-victim")
    batch_id = _batch_of(a)
    b_job = _stored(b, "B alone")
    alone = _reads(b, b_job["id"])

    readers = [SlowReader(stack.base_url, f"/v1/batches/{batch_id}/results?format=zip", key_a["key"])
               for _ in range(READERS)]
    statuses = sorted(reader.status for reader in readers)
    assert statuses == [200] * MAX_ANSWERS + [429] * (READERS - MAX_ANSWERS)
    # Past its answers, A is refused; its reads count against READS_PER_MINUTE too (a ZIP as the largest page).
    assert any(b"too_many_answers" in r.head for r in readers)
    assert all(b"Retry-After" in r.head for r in readers if r.status == 429)

    # While A's four answers are being trickled out, B's reads, its submission and BFL's callback go on.
    attacked = _reads(b, b_job["id"])
    during = _stored(b, "B under attack")
    assert during["source"] == "webhook", "BFL's callback for B's job was not acknowledged in time"
    assert any(r.closed_at is None for r in readers if r.status == 200), "A's readers were cut before B's check"
    print(f"B's read p50 alone {statistics.median(alone) * 1000:.1f} ms, with A's slow readers "
          f"{statistics.median(attacked) * 1000:.1f} ms")

    # Each of A's answers is cut once its reader takes a 64 KiB piece slower than MIN_ANSWER_RATE (8 s at 8 KiB/s).
    wait_until(lambda: all(r.closed_at is not None for r in readers), timeout=60, message="A's slow readers cut")
    # Every answer's lease is given back as it ends (not left to lapse after 60 s).
    leases = redis.Redis.from_url(stack.env["REDIS_URL"])
    wait_until(lambda: leases.zcard(KEYS.answers_of(key_a["id"])) == 0, timeout=5, message="A's answer leases back")
    whole = wait_until(lambda: (lambda r: r if r.status_code == 200 else None)(
        a.get(f"/v1/batches/{batch_id}/results?format=zip", timeout=30)), timeout=30, interval=2,
        message="A reads its ZIP again once its read rate allows")
    assert len([n for n in zipfile.ZipFile(io.BytesIO(whole.content)).namelist() if not n.endswith(".jsonl")]) == ITEMS
