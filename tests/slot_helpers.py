"""The slot tests' config, Redis URL and queued jobs, for the tests of slots, model pools, work lines and the fair share
(their Redis connection and job store are fixtures of tests/unit/conftest.py)."""

from __future__ import annotations

import time
from dataclasses import replace

from fluxhook.core import job as st
from fluxhook.core.accounts import pool_for
from fluxhook.core.config import Config
from fluxhook.core.job import Job, new_job_id
from fluxhook.store.jobs import JobStore
from fluxhook.store.owners import member, member_job, owner_of, owner_range
from fluxhook.store.scripts import text
from fluxhook.store.slots import Slots
from fluxhook.store.work_lines import WorkLines, checked_kind


def _config(bfl_max_active_kontext_max: int = 6, **limits) -> Config:
    """A config whose only model with a pool of its own is flux-kontext-max."""
    return Config(redis_url="redis://unused", bfl_api_key="k", secret_key="s" * 32, api_tokens=("t",),
                  bfl_model_limits=(("flux-kontext-max", bfl_max_active_kontext_max),), **limits)


def _url(connection) -> str:
    kwargs = connection.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


def _queued(store: JobStore, model: str = "flux-2-pro", *, prompt: str = "x", key_id: str | None = None,
            deadline: float | None = None) -> Job:
    """A queued job of ``model`` (of app key ``key_id``; None: an admin token's), created now, with its ``deadline``."""
    now = time.time()
    job = Job(id=new_job_id(now), status=st.QUEUED, model=model, pool=pool_for(model), input={"prompt": prompt},
              created_at=now, updated_at=now, key_id=key_id, deadline=deadline)
    store.create(job)
    return job


def as_key(store: JobStore, job: Job, key_id: str | None) -> Job:
    """``job`` as app key ``key_id``'s (None: an admin token's), its record saying so as ``create_job`` records it: a
    job joins its owner's line, and its later steps find its place there, by its record's ``key_id``."""
    if key_id:
        store.connection.hset(store.keys.job(job.id), "key_id", key_id)
    else:
        store.connection.hdel(store.keys.job(job.id), "key_id")
    return replace(job, key_id=key_id)


def waiting_of(slots: Slots, key_id: str | None) -> list[str]:
    """The ids of the jobs of app key ``key_id`` (None: the admin tokens') in line, pool by pool, each pool's in
    creation order. Jobs waiting out of line (the budget refused them) are not here."""
    pipe = slots.connection.pipeline(transaction=False)
    for pool in slots.pools:
        pipe.zrangebylex(slots.keys.line(pool), *owner_range(owner_of(key_id)))
    return [member_job(text(m)) for members in pipe.execute() for m in members]


def held_by(slots: Slots, key_id: str | None) -> int:
    """How many slots the jobs of app key ``key_id`` (None: the admin tokens') hold."""
    return int(slots.connection.hget(slots.keys.fair_held, owner_of(key_id)) or 0)


def in_flight(slots: Slots, pool: str) -> int:
    """How many slots of ``pool`` are held, over every account."""
    return sum(slots.connection.zcard(slots.keys.slots(pool, account.name)) for account in slots.accounts)


def slot_freed(slots: Slots, timeout: float) -> bool:
    """Whether a slot was freed or a job joined a line without taking one (the wake-up a dispatcher at rest waits on)
    within ``timeout`` seconds; takes that wake-up."""
    return slots.connection.blpop([slots.keys.slot_freed], timeout=timeout) is not None


def add_work(work: WorkLines, kind: str, key_id: str | None, job_id: str, pipeline, **fields) -> None:
    """Put the job of app key ``key_id`` in ``kind``'s line on ``pipeline``, unless it is there already, and wake a
    feeder: what the effect ``AddWork`` does from a job's record, for a job that has none. ``fields``: the member's
    ``bulk``, ``deadline`` and ``end_user``."""
    pipeline.zadd(work.keys.work_line(checked_kind(kind)), {member(owner_of(key_id), job_id, **fields): 0}, nx=True)
    pipeline.lpush(work.keys.work_added, 1)
    pipeline.ltrim(work.keys.work_added, 0, 0)
