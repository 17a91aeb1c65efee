"""Creating a job (fluxhook/lifecycle/creating.py) in-process on a real Redis and the simulator: a job created where the
caller may wait on BFL is sent at once with its own callback URL, else it waits in line for a worker's sender; an
unknown model, a model the key may not use, a spent day or BFL's refusal leave nothing behind, and a refused creation
counts nothing against the key's requests_per_minute. Over HTTP: tests/e2e/api/."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler

import pytest
from redis.exceptions import NoPermissionError

from conftest import ready_payload
from devtools.processes import free_port
from fluxhook.core import job as st
from fluxhook.core import signing
from fluxhook.core.errors import BudgetExceeded, InsufficientCredits, ModelNotAllowed, RateLimited, UnknownModel
from fluxhook.core.wait_reasons import Place
from fluxhook.credits import accounting, budget
from fluxhook.credits.reports import spent_today
from fluxhook.lifecycle import key_admin
from fluxhook.lifecycle.creating import JobRequest, create_job
from fluxhook.lifecycle.steps import reconciling, timeline, waits
from fluxhook.lifecycle.steps.callers import ADMIN, Caller
from fluxhook.services import build_services
from fluxhook.store.keys import KEYS
from helpers import answer, commands_during, gateway_timing_out, serve
from slot_helpers import in_flight, waiting_of

DB = 15  # no other unit test uses it; make_services flushes it before and after
PRO = "flux-2-pro"  # 3 credits a task here


@pytest.fixture()
def svc(make_services, sim):
    return make_services(DB)


def _key(svc, **limits) -> Caller:
    key, _ = key_admin.create_key(svc, {"name": f"app-{time.time_ns()}", **limits}, time.time())
    return Caller(key)


def _nothing_made(svc, sim) -> None:
    listed, _ = svc.jobs.list(limit=10)
    assert listed == [] and in_flight(svc.slots, "default") == 0 and svc.slots.waiting("default") == 0
    assert sim.stats()["submitted"] == 0


def test_a_job_created_where_its_caller_may_wait_is_sent_to_bfl_with_its_own_callback_url(svc, sim):
    job = create_job(svc, ADMIN, JobRequest(PRO, {"prompt": "[pending] sent here"}, metadata={"order": 7}),
                     submit_here=True).job

    assert (job.status, job.account, job.metadata, job.prompt) == (st.SUBMITTED, "default", {"order": 7},
                                                                  "[pending] sent here")
    task = sim.task(job.bfl_id)
    assert task["prompt"] == "[pending] sent here" and task["has_webhook_secret"]
    assert task["webhook_url"] == signing.job_webhook_url(svc.config.public_base_url, svc.config.secret_keys, job.id,
                                                          job.model)
    assert svc.slots.holds(job) and svc.jobs.get(job.id).input is None  # BFL has the input now


def test_a_job_sent_by_its_request_is_sent_and_answered_as_recorded_without_a_read(svc, sim):
    made: list = []
    commands = commands_during(svc.redis, DB, lambda: made.append(create_job(
        svc, ADMIN, JobRequest(PRO, {"prompt": "[pending] answered"}), submit_here=True).job))
    [job] = made

    # Never read outside a script: the request sends it as it recorded it, with the slot it took (no other caller
    # has its id yet), and the step that records BFL's answer hands the record back.
    reads = [c["command"] for c in commands
             if c["command"].startswith((f"HGETALL {KEYS.job(job.id)}", f"HEXISTS {KEYS.slot_holders}"))
             and c["client_type"] != "lua"]
    assert reads == []
    assert job == svc.jobs.get(job.id) and job.status == st.SUBMITTED
    assert sim.task(job.bfl_id)["prompt"] == "[pending] answered"


def test_a_job_created_where_its_caller_may_not_wait_waits_in_line_for_a_workers_sender(svc, sim):
    created = create_job(svc, ADMIN, JobRequest(PRO, {"prompt": "[pending] sent later"}), submit_here=False)
    job = created.job

    assert (job.status, job.bfl_id, job.input) == (st.QUEUED, None, {"prompt": "[pending] sent later"})
    assert not svc.slots.holds(job) and svc.slots.waiting(job.pool) == 1
    assert sim.stats()["submitted"] == 0
    # Why it waits, as its creation found it (and its timeline says): what a look of the slots says now.
    assert created.waiting is not None and created.waiting == waits.of(svc, job)


def test_a_job_left_waiting_is_told_why_by_the_step_that_put_it_in_line_not_by_a_second_look(svc, sim):
    caller = _key(svc, max_active=1)
    assert create_job(svc, caller, JobRequest(PRO, {"prompt": "[pending] first"}), submit_here=True).job.status == \
        st.SUBMITTED
    made = []
    commands = commands_during(svc.redis, DB, lambda: made.append(
        create_job(svc, caller, JobRequest(PRO, {"prompt": "[pending] second"}), submit_here=True)))

    assert made[0].waiting is not None and made[0].waiting.reason == "key_max_active"
    assert made[0].waiting == waits.of(svc, made[0].job)
    # A look of the slots asks where the job stands: its creation knows it is in line, and never asks.
    asked = [c["command"] for c in commands if c["command"].upper().startswith("HEXISTS " + KEYS.slot_holders)]
    assert not asked
    assert [e["kind"] for e in timeline.recent(svc.store.timeline, made[0].job.id)] == ["waiting"]


def test_a_job_its_request_sent_waits_for_nothing_and_one_bfl_put_back_in_line_is_told_why(svc, sim):
    sent = create_job(svc, ADMIN, JobRequest(PRO, {"prompt": "[pending] sent"}), submit_here=True)
    assert sent.job.status == st.SUBMITTED and sent.waiting is None
    sim.settings(max_active=1)  # BFL answers 429 while the first runs

    refused = create_job(svc, ADMIN, JobRequest(PRO, {"prompt": "[pending] refused"}), submit_here=True)

    # Its answer shows why it waits as its creation found it: BFL's room, as the refused submission recorded.
    assert refused.job.status == st.QUEUED and refused.waiting is not None
    assert refused.waiting.reason == waits.of(svc, refused.job).reason == "bfl_capacity"
    assert refused.waiting.until is not None and refused.waiting.until > time.time()


def test_an_unknown_model_is_refused_with_the_closest_names_and_nothing_is_made(svc, sim):
    with pytest.raises(UnknownModel) as refused:
        create_job(svc, ADMIN, JobRequest("flux-2-proo", {"prompt": "x"}), submit_here=True)

    assert "did you mean" in refused.value.message and PRO in refused.value.message
    _nothing_made(svc, sim)


def test_a_key_creates_jobs_of_its_own_models_only(svc, sim):
    caller = _key(svc, models=[PRO])

    with pytest.raises(ModelNotAllowed, match=PRO):
        create_job(svc, caller, JobRequest("flux-kontext-max", {"prompt": "x"}), submit_here=True)

    _nothing_made(svc, sim)
    job = create_job(svc, caller, JobRequest(PRO, {"prompt": "[pending] allowed"}), submit_here=True).job
    assert (job.status, job.key_id) == (st.SUBMITTED, caller.key_id)


def test_a_submission_bfl_refuses_leaves_nothing_behind_and_counts_nothing_against_the_key(svc, sim):
    caller = _key(svc, requests_per_minute=1)
    sim.settings(refuse=402)

    with pytest.raises(InsufficientCredits):
        create_job(svc, caller, JobRequest(PRO, {"prompt": "refused"}), submit_here=True)

    listed, _ = svc.jobs.list(limit=10)
    assert listed == [] and in_flight(svc.slots, "default") == 0
    sim.settings(refuse=None)
    assert create_job(svc, caller, JobRequest(PRO, {"prompt": "[pending] ok"}), submit_here=True).job.status == st.SUBMITTED
    with pytest.raises(RateLimited):  # its one request a minute is used now
        create_job(svc, caller, JobRequest(PRO, {"prompt": "one too many"}), submit_here=True)


def test_a_day_whose_credits_are_spent_creates_nothing(make_services, sim):
    svc = make_services(DB, BFL_DAILY_CREDIT_LIMIT="100")
    svc.redis.hset(KEYS.usage(accounting.utc_day(time.time())), accounting.SPENT, accounting.to_micro(100))

    with pytest.raises(BudgetExceeded):
        create_job(svc, ADMIN, JobRequest(PRO, {"prompt": "too dear"}), submit_here=True)

    _nothing_made(svc, sim)


def test_a_submission_in_hand_whose_answer_never_came_is_a_submitted_job_its_bound_spent(make_services, sim):
    with gateway_timing_out() as (posted, base):
        svc = make_services(DB, BFL_API_BASE=base, BFL_DAILY_CREDIT_LIMIT="100")
        caller, other = _key(svc), _key(svc)
        job = create_job(svc, caller, JobRequest(PRO, {"prompt": "[pending] lost answer", "width": 1024,
                                                       "height": 1024}), submit_here=True).job

    assert (job.status, job.bfl_id, job.input, job.cost_credits) == (st.SUBMITTED, None, None, None)
    assert reconciling.awaits_task(job) and svc.slots.holds(job)
    assert posted == [f"/v1/{PRO}"]  # sent once, never again
    now = time.time()
    # Its request's bound while BFL has not said (not the whole day it reserved to go alone, as a model's first does).
    model = svc.config.catalog.get(PRO)
    bound = budget.bound(model, budget.request_size(model, {"width": 1024, "height": 1024}))
    assert spent_today(svc, now, key_id=caller.key_id) == job.counted_spend == bound > 0
    assert spent_today(svc, now, key_id=other.key_id) == 0 and svc.store.usage.reserved(now) == 0


def test_a_job_whose_callback_overtook_bfl_s_answer_to_its_request_is_answered_as_that_callback_left_it(
        make_services, sim):
    # BFL answers the submission only once its task's Ready callback has come and been kept (``keep_early_callback``):
    # what the request answers with is the job as that callback left it, not as the submission's record did.
    made: list = []

    class AnswersLate(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            [job], _ = made[0].jobs.list(limit=1)
            body = json.dumps(ready_payload("task-overtaken", "https://delivery.example/x.png")).encode()
            assert made[0].store.kept.keep_for_job(job.id, body)
            answer(self, 200, json.dumps({"id": "task-overtaken", "polling_url": "https://bfl.example/p",
                                          "cost": 3.0, "input_mp": 0.0, "output_mp": 1.0}).encode())

        def log_message(self, *args):
            pass

    port = free_port()
    server = serve(port, AnswersLate)
    try:
        svc = make_services(DB, BFL_API_BASE=f"http://127.0.0.1:{port}")
        made.append(svc)
        job = create_job(svc, ADMIN, JobRequest(PRO, {"prompt": "overtaken"}), submit_here=True).job
    finally:
        server.shutdown()

    assert (job.status, job.bfl_id) == (st.READY, "task-overtaken") and job == svc.jobs.get(job.id)


# Every key but the lines (``fh:line:*``): glob has no "not", so each pattern refuses one more letter of the prefix.
ALL_BUT_LINES = ("[^f]*", "f[^h]*", "fh[^:]*", "fh:[^l]*", "fh:l[^i]*", "fh:li[^n]*", "fh:lin[^e]*", "fh:line[^:]*")


def test_a_job_is_recorded_with_its_place_in_line_or_not_at_all(redis_server, svc, sim):
    # A Redis that would take the record but not the place in line (here its user may not write the lines; in a
    # failover, the old primary turned replica between the two; or the process dying there) must not keep a
    # queued job that no line, slot or sweep would ever send, which a retry of the request would find made.
    user, caller = f"no-lines-{time.time_ns()}", _key(svc)
    svc.redis.execute_command("ACL", "SETUSER", user, "on", ">pw", "+@all", *(f"~{p}" for p in ALL_BUT_LINES))
    try:
        url = redis_server.url.replace("//", f"//{user}:pw@").replace("/0", f"/{DB}")
        with pytest.raises(NoPermissionError):
            create_job(build_services(replace(svc.config, redis_url=url)), caller,
                       JobRequest(PRO, {"prompt": "[pending] no line"}), submit_here=False)
    finally:
        svc.redis.execute_command("ACL", "DELUSER", user)

    for job_id in svc.redis.zrange(KEYS.status(st.QUEUED), 0, -1):
        job = svc.jobs.get(job_id.decode())
        placed = svc.slots.look([job])[0][0] != Place.ASIDE or svc.redis.zscore(KEYS.due, job.id) is not None
        assert placed, f"{job.id} is queued, in no line, holding no slot and not due"
    made = create_job(svc, caller, JobRequest(PRO, {"prompt": "[pending] in line"}), submit_here=False).job
    assert waiting_of(svc.slots, caller.key_id) == [made.id] and svc.jobs.list(limit=10)[0] == [made]
