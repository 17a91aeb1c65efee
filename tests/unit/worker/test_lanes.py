"""The lanes' stop (worker/lanes.py): once the grace is over the process asks for its tasks back; a download stops
at its next piece and goes back to the front of its queue as it was (no attempt counted), one line saying so for
each task; the tasks of lanes stuck in a read are given back the same way, and those lanes not waited for: a
pool's member must stop inside its supervisor's STOP_TIMEOUT."""

from __future__ import annotations

import logging
import threading
import time

from rq import Queue, Retry, Worker
from rq.job import JobStatus

from devtools.processes import wait_until
from fluxhook.core import stopping
from fluxhook.core.chunks import CHUNK
from fluxhook.core.holds import HAND_BACK_GRACE, STOP_TIMEOUT
from fluxhook.media.fetch import fetch_file
from helpers import commands_during
from worker import inprocess, lanes

# Released at the end of the test: until then a task waits on it as a download waits on a socket, in C, where
# it cannot look whether the worker wants it back.
_gate = threading.Lock()
HANDED_BACK = "task in hand handed back to the queue: the worker is stopping"


def stuck() -> None:
    """A task that blocks in C until the test releases the gate."""
    with _gate:
        pass


def download(url: str) -> int:
    """A download task: the bytes at ``url`` into the store's upload file; how many."""
    svc = inprocess.services()
    with fetch_file(svc.http, url, svc.config.result_host_allowlist, 8 * CHUNK, svc.storage.new_upload) as fetched:
        return fetched.size


def _announced(caplog) -> list[tuple[str, bool]]:
    """The tasks handed back, one line each, and whether each was stuck (given back by its lane)."""
    return [(r.task, r.stuck) for r in caplog.records if r.getMessage() == HANDED_BACK]


def test_tasks_stuck_in_a_read_are_handed_back_and_the_lanes_stop_within_the_grace_and_one_wait(make_services,
                                                                                                caplog):
    svc = make_services(7)
    queue = Queue("lanes-stop-test", connection=svc.redis)
    running = lanes.start(svc.redis, [queue], "WARNING", after_take=lambda: None, count=4)
    _gate.acquire()
    try:
        tasks = [queue.enqueue(stuck, retry=Retry(max=1, interval=60)) for _ in range(4)]
        wait_until(lambda: all(lane.busy for lane in running), timeout=20, message="every lane at a task")
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="fluxhook.worker"):
            lanes.stop(running, hand_back_after=0.2, cold=lambda: False)
        took = time.monotonic() - started

        # Not waited for once given back: 2 s for each stuck lane (8 s here) took a member past STOP_TIMEOUT.
        assert took < 0.2 + HAND_BACK_GRACE + 1.0, took
        assert took + 10 < STOP_TIMEOUT  # the grace (holds.IMMINENT_SHUTDOWN_DELAY) and this fit the supervisor's wait
        assert sorted(_announced(caplog)) == sorted((t.id, True) for t in tasks)
        # Back in the queue as they were: queued, no retry spent (a stop is no fault of theirs), none running.
        for task in tasks:
            task.refresh()
            assert (task.get_status(), task.retries_left) == (JobStatus.QUEUED, 1)
        assert sorted(queue.get_job_ids()) == sorted(t.id for t in tasks)
        assert queue.started_job_registry.get_job_ids(cleanup=False) == []
    finally:
        _gate.release()
    # Their reads end after all, the process still there: they are the queue's now, and their ends write nothing.
    for lane in running:
        lane.join(5)
    assert not any(lane.is_alive() for lane in running)
    assert {t.get_status(refresh=True) for t in tasks} == {JobStatus.QUEUED}
    assert sorted(queue.get_job_ids()) == sorted(t.id for t in tasks)


def test_a_download_in_flight_stops_at_its_next_piece_goes_back_to_the_front_and_runs_again_whole(
        make_services, spy, caplog):
    svc = make_services(7)
    inprocess.init(svc)
    queue = Queue("lanes-stop-test", connection=svc.redis)
    first, rest = b"\x01" * (CHUNK + 1), b"\x02" * CHUNK

    class Paced(list):
        """The first piece at once, the next only once the worker wants its tasks back: the download is in flight
        (between two pieces) when the stop comes, and gets its next piece after it."""

        def __iter__(self):
            yield first
            wait_until(stopping.REQUESTED.is_set, timeout=30, message="the worker to want its tasks back")
            yield rest

    url = spy.route("/slow-body.bin", body=Paced())
    task = queue.enqueue(download, url, retry=Retry(max=1, interval=60))
    waiting = queue.enqueue(download, url)  # behind it in line (one lane): the handed-back task goes before it
    running = lanes.start(svc.redis, [queue], "WARNING", after_take=lambda: None, count=1)
    wait_until(lambda: running[0].busy and spy.hits, timeout=20, message="the download in flight")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="fluxhook.worker"):
        lanes.stop(running, hand_back_after=0.2, cold=lambda: False)
    took = time.monotonic() - started

    assert took < 0.2 + HAND_BACK_GRACE, took  # it stopped by itself: its lane did not give it back
    assert _announced(caplog) == [(task.id, False)]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # a stop, not a failure
    task.refresh()
    assert (task.get_status(), task.retries_left) == (JobStatus.QUEUED, 1)
    assert queue.get_job_ids() == [task.id, waiting.id]
    assert queue.started_job_registry.get_job_ids(cleanup=False) == []

    stopping.REQUESTED.clear()  # the restart: the same task, whole this time
    spy.route("/slow-body.bin", body=first + rest)
    running = lanes.start(svc.redis, [queue], "WARNING", after_take=lambda: None, count=1)
    try:
        wait_until(lambda: task.get_status(refresh=True) == JobStatus.FINISHED, timeout=20, message="the download")
        assert task.return_value() == len(first + rest)
    finally:
        lanes.stop(running, hand_back_after=5, cold=lambda: False)


def test_idle_lanes_wait_in_one_blocking_take_a_task_ends_it_at_once_and_a_stop_within_a_second(make_services):
    """docs/scaling.md: a kind's idle lanes cost Redis one BLMOVE per WAIT_FOR_TASK (its watcher's), not one a second each; a
    task queued is taken at once; a stop ends the watcher's wait (CLIENT UNBLOCK) and signs every lane off."""
    svc = make_services(7)
    inprocess.init(svc)
    queue = Queue("lanes-rest-test", connection=svc.redis)
    running = lanes.start(svc.redis, [queue], "WARNING", after_take=lambda: None, count=4)
    try:
        wait_until(lambda: Worker.count(queue=queue) == 4, timeout=10, message="the lanes to register")
        time.sleep(0.5)  # each lane's start-up (its birth, its first maintenance) is over
        sent = commands_during(svc.redis, 7, lambda: time.sleep(2.0))
        assert [c["command"].split(" ")[0] for c in sent if not c["command"].startswith("SELECT")] == []

        queued = time.time()
        task = queue.enqueue("time.time")
        wait_until(lambda: task.get_status(refresh=True) == JobStatus.FINISHED, timeout=5, message="the task")
        assert float(task.return_value()) - queued < 0.5  # taken as it was queued, not at a look
    finally:
        started = time.monotonic()
        lanes.stop(running, hand_back_after=5, cold=lambda: False)
        took = time.monotonic() - started
    assert took < 1.0 and not any(lane.is_alive() for lane in running), took


def test_a_lane_checks_for_a_lost_end_once_idle_a_while_not_between_tasks(make_services, monkeypatch):
    """A lane looks whether Redis still holds a task of its as running (a failover that lost its end) from
    IDLE_CHECK_EVERY after its last task ends, for IDLE_CHECK_FOR: not the moment it waits for the next."""
    monkeypatch.setattr(lanes, "IDLE_CHECK_EVERY", 2.0)
    svc = make_services(7)
    inprocess.init(svc)
    queue = Queue("lanes-check-test", connection=svc.redis)
    running = lanes.start(svc.redis, [queue], "WARNING", after_take=lambda: None, count=2)
    try:
        wait_until(lambda: Worker.count(queue=queue) == 2, timeout=10, message="the lanes to register")
        tasks = [queue.enqueue("time.time") for _ in range(6)]
        wait_until(lambda: all(t.get_status(refresh=True) == JobStatus.FINISHED for t in tasks), timeout=5,
                   message="the tasks")

        def checks(seconds: float) -> list[str]:
            sent = commands_during(svc.redis, 7, lambda: time.sleep(seconds))
            return [c["command"] for c in sent if c["command"].startswith("SMEMBERS rq:worker:")]

        assert checks(1.0) == []  # just after their tasks
        assert checks(2.0)  # idle long enough: each lane that ran a task looks
    finally:
        lanes.stop(running, hand_back_after=5, cold=lambda: False)


def test_a_lane_feeds_as_it_takes_a_task_whose_take_made_room_in_rq_s_queue_not_once_it_ran(make_services):
    svc = make_services(7)
    inprocess.init(svc)
    queue = Queue("lanes-take-test", connection=svc.redis)
    tasks = [queue.enqueue("time.time") for _ in range(3)]
    seen: list[tuple[str, int]] = []  # at each feed: the first task's status, and how many wait in RQ's queue
    running = lanes.start(svc.redis, [queue], "WARNING", count=1,
                          after_take=lambda: seen.append((tasks[0].get_status(refresh=True), queue.count)))
    try:
        wait_until(lambda: all(t.get_status(refresh=True) == JobStatus.FINISHED for t in tasks), timeout=10,
                   message="the tasks")
    finally:
        lanes.stop(running, hand_back_after=5, cold=lambda: False)
    assert seen[0] == (JobStatus.QUEUED, 2) and len(seen) == 3  # taken, not yet run: one place freed in the queue
