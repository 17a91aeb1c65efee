"""The web process's bulkheads (receiver/bulkheads.py): whose line a request waits in, told from its head alone, and
no turns for made-up tokens; work permits handed between callers in turns; what a request of an app key counts against
its read limit, decided in one place for every request: one unit for any request under /v1, more for a list's large
page or a batch's results, nothing for a submission (``requests_per_minute`` counts those) or outside /v1 (BFL's
callbacks above all). Under load, over HTTP, with two keys: tests/e2e/api/test_web_fair_share.py."""

from __future__ import annotations

import threading

import pytest

from devtools.processes import wait_until
from fluxhook.lifecycle.steps import key_limits
from receiver import bulkheads
from receiver.bulkheads import ADMIN, BFL, DASHBOARD, LINKS, OTHER, UNKNOWN, FairPermits, Lanes, read_cost


def environ(path: str = "/v1/jobs", query: str = "", **headers: str) -> dict:
    found = {"PATH_INFO": path, "QUERY_STRING": query}
    found.update({"HTTP_" + name.upper(): value for name, value in headers.items()})
    return found


def test_a_checked_key_waits_in_its_own_lane_with_its_weight_and_a_made_up_one_in_the_unknown_lane():
    lanes = Lanes(("admin-token-0123456789",))
    lanes.remember("fhk_a_secret", "key_a", 3)
    assert lanes.of(environ(authorization="Bearer fhk_a_secret")) == ("key:key_a", 3)
    assert lanes.of(environ(x_key="fhk_a_secret")) == ("key:key_a", 3)
    for n in range(3):  # each made-up token lands in the one lane: inventing tokens buys no turns
        assert lanes.of(environ(authorization=f"Bearer fhk_made_up_{n}")) == (UNKNOWN, 1)


def test_admin_tokens_callbacks_links_and_sessions_each_have_a_lane():
    lanes = Lanes(("admin-token-0123456789",))
    assert lanes.of(environ(authorization="Bearer admin-token-0123456789")) == (ADMIN, 1)
    assert lanes.of(environ("/webhooks/bfl/abc")) == (BFL, 1)
    assert lanes.of(environ("/v1/jobs/job_1/image", "token=abc")) == (LINKS, 1)
    assert lanes.of(environ("/dashboard/", cookie="fluxhook_session=xyz")) == (DASHBOARD, 1)
    assert lanes.of(environ("/healthz")) == (OTHER, 1)


def test_the_keys_remembered_are_bounded(monkeypatch):
    monkeypatch.setattr(bulkheads, "KNOWN_KEYS", 2)
    lanes = Lanes(())
    for n in range(3):
        lanes.remember(f"fhk_{n}", f"key_{n}", 1)
    assert lanes.of(environ(authorization="Bearer fhk_0")) == (UNKNOWN, 1)  # the oldest forgotten
    assert lanes.of(environ(authorization="Bearer fhk_2")) == ("key:key_2", 1)


def test_a_jobs_signed_links_wait_in_its_keys_lane_for_links_once_its_key_is_known():
    lanes = Lanes(())
    lanes.remember_link("job_A1", "key_a")
    lanes.remember_link("job_B1", "key_b")
    lanes.remember_link("job_X1", None)  # an admin token's job: the shared lane
    assert lanes.of(environ("/v1/jobs/job_A1/image", "w=256&token=abc")) == ("link:key_a", 1)
    assert lanes.of(environ("/v1/jobs/job_B1/poster", "token=abc")) == ("link:key_b", 1)
    for path in ("/v1/jobs/job_X1/image", "/v1/jobs/job_new/image", "/v1/jobs/job_A1"):
        assert lanes.of(environ(path, "token=abc")) == (LINKS, 1), path
    # A key's own bearer requests stay in its key's lane, apart from its links'.
    lanes.remember("fhk_a", "key_a", 1)
    assert lanes.of(environ("/v1/jobs/job_A1/image", "token=abc", authorization="Bearer fhk_a")) == ("key:key_a", 1)


# --- The permits' turns ---

class Requests:
    """Threads that each take a permit in a lane, note their turn, and hold it until let go."""

    def __init__(self, permits: FairPermits):
        self.permits = permits
        self.order: list[str] = []
        self.go = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, lane: str, name: str, weight: int = 1) -> None:
        waiting = self.permits.waiting(lane)

        def run():
            self.permits.acquire(lane, weight)
            self.order.append(name)
            self.permits.release(lane)

        self.threads.append(threading.Thread(target=run, daemon=True))
        self.threads[-1].start()
        wait_until(lambda: self.permits.waiting(lane) == waiting + 1, timeout=5, message=f"{name} in line")

    def finish(self) -> list[str]:
        for thread in self.threads:
            thread.join(timeout=5)
        return self.order


def test_one_callers_requests_go_in_the_order_they_came():
    permits = FairPermits(1)
    permits.acquire("other", 1)  # the only permit, held by someone else
    requests = Requests(permits)
    for n in range(5):
        requests.start("key:a", f"a{n}")
    permits.release("other")
    assert requests.finish() == ["a0", "a1", "a2", "a3", "a4"]


def test_a_caller_with_a_hundred_waiting_delays_anothers_request_by_one_turn():
    permits = FairPermits(1)
    permits.acquire("other", 1)
    requests = Requests(permits)
    for n in range(100):
        requests.start("key:a", f"a{n}")
    requests.start("key:b", "b0")  # arrives after A's hundred
    permits.release("other")
    order = requests.finish()
    assert order.index("b0") == 1  # A's turn (one request), then B's
    assert [name for name in order if name != "b0"] == [f"a{n}" for n in range(100)]


def test_a_heavier_key_gets_permits_in_proportion_to_its_weight():
    permits = FairPermits(1)
    permits.acquire("other", 1)
    requests = Requests(permits)
    for n in range(4):
        requests.start("key:a", f"a{n}", weight=2)
    for n in range(4):
        requests.start("key:b", f"b{n}")
    permits.release("other")
    order = requests.finish()
    # A's permits cost it 1/2 a turn each, B's 1: while both wait, two of A's to each of B's (fluxhook.core.fair_turns;
    # the tie at the start goes to A's earlier request).
    assert order == ["a0", "b0", "a1", "a2", "b1", "a3", "b2", "b3"]
    assert [name[0] for name in order[:6]].count("a") == 4


def test_a_caller_holds_at_most_half_the_permits_so_another_finds_one_at_once():
    permits = FairPermits(4)
    permits.acquire("key:a", 1)
    permits.acquire("key:a", 1)  # A's two long searches
    requests = Requests(permits)
    requests.start("key:a", "a-third")  # waits though two permits are free: A holds its half
    assert permits.held("key:a") == 2
    got = threading.Event()
    threading.Thread(target=lambda: (permits.acquire("key:b", 1), got.set()), daemon=True).start()
    assert got.wait(5), "B waited behind A's long requests"
    assert permits.waiting("key:a") == 1
    permits.release("key:a")
    assert requests.finish() == ["a-third"]
    permits.release("key:b")
    permits.release("key:a")
    assert permits.held("key:a") == 0 and permits.held("key:b") == 0


def test_a_free_permit_is_taken_at_once_when_nobody_waits():
    permits = FairPermits(2)
    permits.acquire("key:a", 1)
    permits.acquire("bfl", 1)
    assert (permits.held("key:a"), permits.held("bfl")) == (1, 1)
    permits.release("key:a")
    permits.release("bfl")
    assert (permits.held("key:a"), permits.held("bfl")) == (0, 0)


# --- what a request counts against its key's read limit ---

@pytest.mark.parametrize("path, endpoint", [
    ("/v1/jobs/job_1", "jobs.show"), ("/v1/jobs/job_1/image", "jobs.image"), ("/v1/jobs/job_1/video", "media.video"),
    ("/v1/jobs/job_1/events", "events.job_events"), ("/v1/deliveries", "jobs.deliveries"), ("/v1/usage", "usage.index"),
    ("/v1/get_result", "bfl_compat.get_result"), ("/v1/nowhere", None), ("/v1/batches/b_1", "batches.show"),
    ("/v1/jobs/job_1/cancel", "jobs.cancel"),
])
def test_every_request_under_v1_counts_one(path, endpoint):
    assert read_cost(path, endpoint, {}) == 1


def test_a_page_counts_by_the_jobs_it_asks_for_and_a_batchs_results_as_the_largest_read():
    assert read_cost("/v1/jobs", "jobs.index", {}) == 1
    assert read_cost("/v1/jobs", "jobs.index", {"limit": "100"}) == 5
    assert read_cost("/v1/batches", "batches.index", {"limit": "41"}) == 3
    assert read_cost("/v1/jobs", "jobs.index", {"limit": "many"}) == 1  # malformed: it made the web work all the same
    assert read_cost("/v1/batches/b_1/results", "batches.results", {}) == key_limits.LARGEST_READ


@pytest.mark.parametrize("path, endpoint", [
    ("/v1/jobs", "jobs.create"), ("/v1/jobs/track", "jobs.track"), ("/v1/batches", "batches.create"),
    ("/v1/flux-2-pro", "bfl_compat.submit"), ("/webhooks/bfl", "webhooks.bfl"), ("/health", "health.health"),
    ("/", "dashboard.overview"),
])
def test_submissions_and_whatever_is_outside_v1_count_nothing(path, endpoint):
    assert read_cost(path, endpoint, {}) == 0
