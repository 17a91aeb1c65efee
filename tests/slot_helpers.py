"""The slot tests' config, Redis URL and queued jobs, for the tests of slots, model pools and the fair share (their Redis
connection and job store are fixtures of tests/unit/conftest.py)."""

from __future__ import annotations

import time
from dataclasses import replace

from fluxhook.core import transitions as st
from fluxhook.core.config import Config
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.pools import pool_for
from fluxhook.store.jobs import JobStore


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
