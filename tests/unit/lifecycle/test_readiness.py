"""The readiness checks that GET /readyz answers with and `fluxhook doctor` prints, on a real Redis."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from rq import Worker
from rq.utils import now, utcformat

from devtools.processes import free_port
from fluxhook.lifecycle import readiness
from fluxhook.lifecycle.readiness import CLOCK_SKEW_MAX, FAIL, OK, SKIP, WARN
from fluxhook.services import build_services

DB = 14  # a Redis database of these tests' own, where no worker of the stack registers


@pytest.fixture()
def svc(make_services, tmp_path):
    return make_services(DB, STORAGE_URL=f"file://{tmp_path / 'images'}")


def _by_name(checks) -> dict[str, readiness.Check]:
    return {check.name: check for check in checks}


def _worker(svc, name: str) -> Worker:
    worker = Worker([svc.queue], connection=svc.redis, name=name)
    worker.register_birth()
    return worker


def test_all_ready_with_a_live_worker(svc):
    worker = _worker(svc, "readiness-live")
    worker.heartbeat()
    checks = readiness.check(svc)
    assert [c.name for c in checks] == ["redis", "worker", "storage"]
    assert [c.state for c in checks] == [OK, OK, OK] and not any(c.failed for c in checks)
    by_name = _by_name(checks)
    assert by_name["redis"].detail.startswith(f"{svc.config.redis_url}: PING ")
    assert by_name["worker"].detail.startswith("1 worker process(es) alive (1 RQ workers: their lanes), latest heartbeat ")
    assert by_name["storage"].detail == f"{svc.config.storage_url} is writable"
    assert all(c.reason == "" for c in checks)


def test_no_worker_and_a_stale_one_fail(svc):
    worker = _by_name(readiness.check(svc))["worker"]
    assert worker.failed and worker.reason == "no worker heartbeat in the last 60 s"
    assert "(0 registered)" in worker.detail and "python -m worker" in worker.detail

    stale = _worker(svc, "readiness-stale")
    svc.redis.hset(stale.key, "last_heartbeat", utcformat(now() - timedelta(seconds=120)))
    worker = _by_name(readiness.check(svc))["worker"]
    assert worker.failed and "(1 registered; the latest, 120 s ago)" in worker.detail


def test_redis_unreachable_skips_the_worker_and_still_checks_storage(svc):
    down = build_services(replace(svc.config, redis_url=f"redis://:pw-secret@127.0.0.1:{free_port()}/0"))
    checks = _by_name(readiness.check(down))
    assert checks["redis"].failed and checks["redis"].reason == "redis unreachable: ConnectionError"
    assert checks["redis"].detail.startswith("redis://:***@127.0.0.1:") and "pw-secret" not in checks["redis"].detail
    assert (checks["worker"].state, checks["worker"].detail) == (SKIP, "needs Redis")
    clock = readiness.clock(down)
    assert clock.state == SKIP and clock.detail.startswith("cannot read Redis's clock: ConnectionError")
    assert checks["storage"].state == OK


def test_a_host_clock_off_redis_s_is_a_warning_that_says_by_how_much_and_what_to_do(svc):
    """Redis's own clock against this host's, shifted: a lease one host writes is read by another's clock."""
    assert readiness.clock(svc).state == OK  # the suite's Redis runs on this host
    for shift, side in ((CLOCK_SKEW_MAX + 3, "behind"), (-(CLOCK_SKEW_MAX + 3), "ahead of")):
        found = readiness.clock(svc, local=lambda shift=shift: time.time() - shift)
        assert found.state == WARN and not found.failed
        assert f"s {side} Redis's" in found.detail and "NTP" in found.detail
        assert float(found.detail.split(" s ")[0].rsplit(" ", 1)[1]) == pytest.approx(abs(shift), abs=0.5)
    within = readiness.clock(svc, local=lambda: time.time() - CLOCK_SKEW_MAX / 2)
    assert within.state == OK


def test_a_process_says_at_start_when_its_clock_is_off_and_nothing_when_it_is_in_step(svc, caplog):
    with caplog.at_level(logging.WARNING, logger="fluxhook.readiness"):
        readiness.log_clock(svc)
        assert not caplog.records
        readiness.log_clock(svc, local=lambda: time.time() + CLOCK_SKEW_MAX + 3)
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        f"this host's clock is {CLOCK_SKEW_MAX + 3:.1f} s ahead of Redis's"]


def test_storage_that_cannot_take_a_file_fails(make_services, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    svc = make_services(DB, STORAGE_URL=f"file://{blocker / 'images'}")
    storage = _by_name(readiness.check(svc))["storage"]
    assert storage.state == FAIL and storage.reason == "storage is not writable"
    # Why, and which setting names the directory.
    assert storage.detail == (f"{svc.config.storage_url} is not writable: cannot write a file in {blocker / 'images'}: "
                              "Not a directory (STORAGE_URL names this directory: it must exist or be creatable, with "
                              "room, and be writable by this user)")


def test_redact_url():
    assert readiness.redact_url("redis://user:secret@example.com:6380/0") == "redis://user:***@example.com:6380/0"
    assert readiness.redact_url("rediss://:secret@[::1]:6380/0") == "rediss://:***@[::1]:6380/0"
    assert readiness.redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
