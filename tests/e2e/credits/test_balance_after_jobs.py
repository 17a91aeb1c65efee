"""Every view of a balance shows BFL's own reading, through the Procfile's processes: after a restart on
another BFL (another endpoint and key), the previous BFL's reading is shown nowhere and the new one's is read at once,
though the interval's lock of the worker before the restart still holds; and after jobs end, an admin's
``GET /v1/credits`` shows BFL's new balance within 30 s of the last end, BFL asked once for the burst. The rules
in-process: tests/unit/credits/test_balance.py."""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from conftest import API, service_env
from devtools.processes import RedisServer, free_port, wait_until
from devtools.stack import Stack
from fluxhook.core.config import Config
from fluxhook.credits import balance
from fluxhook.credits.figures import format_credits
from fluxhook.services import build_services
from fluxhook.store.keys import KEYS
from fluxhook.store.usage import Balance
from helpers import sign_in

# The previous BFL's balance, as the stack kept it before its restart, and the BFL it runs on now.
OLD, NEW = 999_216.0, 999_815.0
JOBS = 5
# docs/operating.md: within 30 s of the last job an account ran ending.
WITHIN = 30.0


@pytest.fixture(scope="module")
def restarted(simulator, _own_simulator, _spies, tmp_path_factory):
    """A stack started on a BFL of its own (``NEW`` credits) over a Redis where the stack before it, on another BFL,
    kept that BFL's reading (``OLD``) and the interval's lock, as a restart on a new simulator leaves them."""
    server = RedisServer().start()
    bfl = _own_simulator
    bfl.reset()
    bfl.settings(credits=NEW)
    try:
        before = build_services(Config.from_env(service_env(server, simulator, _spies[0].port, free_port())))
        balance.keep(before, before.config.accounts[0], Balance(OLD, time.time()))
        before.redis.set(KEYS.balance_lock(), "the worker before the restart", ex=300)
        before.store.tallies.stop()
        var_dir = Path(tmp_path_factory.mktemp("balance-after-jobs"))
        env = dict(os.environ)
        env.update(service_env(server, bfl, _spies[0].port, free_port(), STORAGE_URL=f"file://{var_dir / 'images'}"))
        running = Stack(env=env, var_dir=var_dir)
        running.start()
        try:
            yield running, bfl
        finally:
            running.stop()
    finally:
        server.stop()
        bfl.reset()


def _views(stack, api: API) -> dict[str, tuple[float, int] | None]:
    """Each view's figure of the account's balance and when it was read (whole seconds); None where it shows none."""
    views: dict[str, tuple[float, int] | None] = {}
    credits = api.get("/v1/credits")
    views["/v1/credits"] = (credits.json()["credits"], int(parsedate_to_datetime(
        credits.headers["Last-Modified"]).timestamp())) if credits.status_code == 200 else None
    account = api.get("/v1/accounts").json()["accounts"][0]
    views["/v1/accounts"] = None if account["balance"] is None else (account["balance"], int(datetime.strptime(
        account["balance_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()))
    metrics = api.get("/metrics").text
    figure = re.search(r'^fluxhook_bfl_credits\{account="default"\} (\S+)$', metrics, re.M)
    read_at = re.search(r'^fluxhook_bfl_credits_read_timestamp_seconds\{account="default"\} (\S+)$', metrics, re.M)
    views["/metrics"] = (float(figure[1]), int(float(read_at[1]))) if figure and read_at else None
    return views


def _overview(stack) -> str:
    session, _ = sign_in(stack.base_url)
    return session.get(stack.base_url + "/", timeout=10).text


def test_after_a_restart_on_another_bfl_its_reading_is_shown_nowhere_and_the_new_one_is_read_at_once(restarted):
    stack, bfl = restarted
    api = API(stack.base_url)
    seen: list[dict] = []

    def all_show_the_new_bfls() -> dict | None:
        views = _views(stack, api)
        seen.append(views)
        return views if all(view is not None and view[0] == NEW for view in views.values()) else None

    views = wait_until(all_show_the_new_bfls, timeout=20, interval=0.2,
                       message="every view to show the new BFL's balance")
    assert not [views for views in seen for view in views.values() if view is not None and view[0] == OLD]
    assert len({view[1] for view in views.values()}) == 1  # one reading: the same time in each view
    page = _overview(stack)
    assert f"{format_credits(NEW)} credits" in page and format_credits(OLD) not in page
    assert bfl.stats()["credits_requests"] <= 2  # the worker's first look (and the web's, if it asked first)


def test_after_jobs_end_v1_credits_shows_bfls_new_balance_within_30_s(restarted):
    stack, bfl = restarted
    api = API(stack.base_url)
    wait_until(lambda: (lambda v: v is not None and v[0] == NEW)(_views(stack, api)["/v1/credits"]), timeout=20,
               interval=0.2, message="the balance before the jobs")
    asked_before = bfl.stats()["credits_requests"]

    jobs = [api.submit(f"spent on the balance {n}") for n in range(JOBS)]
    with ThreadPoolExecutor(JOBS) as pool:
        ended = list(pool.map(lambda job: api.wait_for(job["id"], "stored", timeout=30), jobs))
    last_end = time.monotonic()  # the last job seen stored: after it ended
    spent = sum(job["cost"]["credits"] for job in ended)
    assert spent > 0
    expected = bfl.control("GET", "/settings")["credits"]
    assert expected == round(NEW - spent, 2)

    def shown() -> float | None:
        view = _views(stack, api)["/v1/credits"]
        return view[0] if view is not None and view[0] == expected else None

    wait_until(shown, timeout=WITHIN - (time.monotonic() - last_end), interval=0.2,
               message="GET /v1/credits to show BFL's balance after the jobs")
    took = time.monotonic() - last_end
    assert took < WITHIN
    views = _views(stack, api)
    assert {view[0] for view in views.values() if view is not None} == {expected} and None not in views.values()
    assert len({view[1] for view in views.values()}) == 1
    # One read for the burst, not one per job.
    assert bfl.stats()["credits_requests"] - asked_before == 1
    print(f"balance shown {took:.1f} s after the last job was seen stored")
