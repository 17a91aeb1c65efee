"""BFL's delivery URLs are kept sealed in a job's record: read back as they were, compared in place by a
transition, across a rotation of SECRET_KEY and for a record kept before sealing."""

from __future__ import annotations

import time
from dataclasses import replace

from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.signing import Sealer
from fluxhook.store.jobs import JobStore, Terms
from fluxhook.store.keys import KEYS
from fluxhook.store.migrations import migrate
from slot_helpers import _config

OLD, NEW = "o" * 32, "n" * 32
URL = "https://delivery.example/a.png?sig=secret-signature"


def _ready(store: JobStore, url: str) -> Job:
    now = time.time()
    job = Job(id=new_job_id(now), status=st.READY, model="flux-2-pro", bfl_id=f"task-{now}", result_url=url,
              draft_cache_source=url + "&draft", created_at=now, updated_at=now)
    store.create(job)
    return job


def test_a_delivery_url_is_kept_sealed_and_read_back_as_it_was(connection):
    store = JobStore(connection, sealer=Sealer((NEW,)))
    job = _ready(store, URL)
    kept = connection.hgetall(KEYS.job(job.id))
    assert not any(b"secret-signature" in value for value in kept.values())
    read = store.get(job.id)
    assert (read.result_url, read.draft_cache_source) == (URL, URL + "&draft")
    assert store.update(job.id, only_in=(st.READY,), result_url=URL + "2")
    assert store.get(job.id).result_url == URL + "2"
    assert b"secret-signature" not in connection.hget(KEYS.job(job.id), "result_url")


def test_a_transition_compares_the_url_in_place_across_a_rotation_and_for_a_record_kept_unsealed(connection):
    rotated = JobStore(connection, sealer=Sealer((OLD, NEW)))
    sealed_before = _ready(JobStore(connection, sealer=Sealer((OLD,))), URL)
    kept_plain = _ready(JobStore(connection), URL)
    migrate(connection, replace(_config(), secret_key=NEW, previous_secret_keys=(OLD,)))  # seals what it kept plain
    for job in (sealed_before, kept_plain):
        assert rotated.get(job.id).result_url == URL
        assert not rotated.transition(job.id, st.STORED, terms=Terms(if_equal=("result_url", URL + "-another")))
        assert rotated.transition(job.id, st.STORED, terms=Terms(if_equal=("result_url", URL)))
        assert rotated.get(job.id).status == st.STORED
