"""Every request of an app key counts against its read limit, cheap ones too (docs/keys.md "Reads"): over real HTTP
(the session stack's gunicorn), key A, with a reads_per_minute of 6 (5 at once, one back every 10 s), spends it on
GET /v1/jobs/{id} and is then refused 429 rate_limited with Retry-After there, on its image and on a variant of it,
while key B, with the same small limit, reads its own job and image in the same test. A's jobs' signed links count
against a bucket of A's own for links: open while A's API reads are refused, and refused past it. Its submission
counted no read."""

from __future__ import annotations

import time

import requests

from devtools.processes import wait_until
from helpers import assert_error
from key_helpers import make_key

# Small, so a refusal holds for the whole test (a web process answers a refusal it repeats after 1 s).
PER_MINUTE = 6
AT_ONCE = 5  # a tenth of a minute's, the largest page's 5 at least
UNIT_SECONDS = 10


def _stored(api, app, prompt: str) -> dict:
    """A job of ``app``'s key, stored, read by the admin (whose reads count against no key)."""
    made = app.submit(prompt)
    return api.wait_for(made["id"], "stored", timeout=30)


def _until_refused(read, most: int = 40) -> tuple[list[int], requests.Response, float]:
    statuses, started = [], time.monotonic()
    while len(statuses) < most:
        answer = read()
        statuses.append(answer.status_code)
        if answer.status_code != 200:
            return statuses, answer, time.monotonic() - started
    raise AssertionError(f"never refused: {statuses}")


def _refused(answer: requests.Response) -> None:
    assert "reads_per_minute" in assert_error(answer, 429, "rate_limited")["message"]
    assert 1 <= int(answer.headers["Retry-After"]) <= UNIT_SECONDS


def test_a_keys_cheap_reads_count_against_its_limit_and_another_key_reads_on(api):
    _, a = make_key(api, reads_per_minute=PER_MINUTE)
    _, b = make_key(api, reads_per_minute=PER_MINUTE)
    job_a = _stored(api, a, "A's fox")
    job_b = _stored(api, b, "B's fox")

    statuses, refused, took = _until_refused(lambda: a.get(f"/v1/jobs/{job_a['id']}"))

    # Its submission counted nothing: the whole burst was there, and one more for each 10 s the reads took.
    assert AT_ONCE <= len(statuses) - 1 <= AT_ONCE + int(took / UNIT_SECONDS) + 1, (statuses, took)
    _refused(refused)
    for path in (f"/v1/jobs/{job_a['id']}/image", f"/v1/jobs/{job_a['id']}/image?w=64&format=webp",
                 f"/v1/jobs/{job_a['id']}", "/v1/usage"):
        _refused(a.get(path))
    # B, whose bucket is its own, reads on.
    assert b.get(f"/v1/jobs/{job_b['id']}").status_code == 200
    image = b.get(f"/v1/jobs/{job_b['id']}/image")
    assert image.status_code == 200 and image.content

    # A's signed link needs no key and counts in A's bucket for links: open now, refused past its own burst.
    link = requests.Session()
    statuses, refused, took = _until_refused(lambda: link.get(job_a["image"]["url"], timeout=10))
    assert AT_ONCE <= len(statuses) - 1 <= AT_ONCE + int(took / UNIT_SECONDS) + 1, (statuses, took)
    assert "signed links" in assert_error(refused, 429, "rate_limited")["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= UNIT_SECONDS
    assert b.get(f"/v1/jobs/{job_b['id']}/image").status_code == 200

    # A client that waits as told reads again.
    wait_until(lambda: a.get(f"/v1/jobs/{job_a['id']}").status_code == 200, timeout=UNIT_SECONDS + 5, interval=0.5,
               message="A's read admitted again")
