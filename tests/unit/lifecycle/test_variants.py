"""A variant made once over every process (lifecycle/variants.py, store/variants.py), on real Redis and a file store:
twenty first requests at once make it once and all get it; a request whose variant another process is making waits for
its record, and makes it itself once that maker's lock lapses unrecorded; deleting the job (DELETE, retention) deletes
every variant it had, key B's untouched; a job deleted while its variant is made leaves no file behind."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from fluxhook.core import job as st
from fluxhook.core.errors import JobNotFound, VariantFailed
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.variants import Variant, storage_key
from fluxhook.lifecycle import variants
from fluxhook.lifecycle.removal import remove_job
from fluxhook.lifecycle.retention import purge_expired
from fluxhook.media.variants import variant_bytes

DB = 6  # the unit tests' in-process services' database (flushed before and after each test)


class CountingMakers:
    """Makers that make the bytes in the caller's thread, counting how many they made."""

    def __init__(self):
        self.runs = 0
        self.lock = threading.Lock()

    def make(self, owner, original, variant):
        with self.lock:
            self.runs += 1
        return variant_bytes(original(), variant)


def _jpeg(size=(800, 600)) -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize(size).convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def _stored(svc, key_id: str | None, *, created_at: float | None = None) -> Job:
    data = _jpeg()
    now = created_at or time.time()
    job_id = new_job_id(now)
    svc.storage.put(f"{job_id}.jpg", io.BytesIO(data))
    job = Job(id=job_id, status=st.STORED, model="flux-2-pro", created_at=now, updated_at=now, completed_at=now,
              key_id=key_id, storage_key=f"{job_id}.jpg",
              image={"content_type": "image/jpeg", "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                     "width": 800, "height": 600})
    svc.jobs.create(job)
    return job


@pytest.fixture()
def svc(make_services):
    return make_services(DB)


def _files(svc) -> set[str]:
    return {path.name for path in svc.storage.root.iterdir() if not path.name.startswith(".")}


def test_twenty_first_requests_at_once_make_the_variant_once_and_all_get_it(svc):
    job = _stored(svc, "key_aaaaaaaaaaaaaaaa")
    source = variants.source_of(job, "image")
    variant = Variant(512, "webp", 75)
    made_count = []
    real_put = svc.storage.put

    def counting_put(key, data, **kwargs):
        made_count.append(key)
        return real_put(key, data, **kwargs)

    svc.storage.put = counting_put
    start = threading.Barrier(20)

    def ask(_):
        start.wait()
        return variants.made(svc, job, source, variant, CountingMakers())

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(ask, range(20)))

    assert made_count == [storage_key(job.id, "image", variant)]
    assert len(set(results)) == 1
    stored = results[0]
    data = svc.storage.open(stored.key).read()
    assert hashlib.sha256(data).hexdigest() == stored.sha256 and len(data) == stored.size
    assert variants.stored(svc, job, source, variant) == stored


def test_a_variant_another_process_makes_is_waited_for_not_made_again(svc):
    job = _stored(svc, None)
    source = variants.source_of(job, "image")
    variant = Variant(256, "jpeg", 90)
    key = storage_key(job.id, "image", variant)
    # Another process took the lock and is making it.
    token, found = svc.store.variants.begin(job.id, key, lease=30)
    assert token is not None and found is None
    makers = CountingMakers()
    looks = []
    real_look = svc.store.variants.look
    svc.store.variants.look = lambda *args: looks.append(args) or real_look(*args)
    result = {}
    waiter = threading.Thread(target=lambda: result.update(stored=variants.made(svc, job, source, variant, makers)))
    waiter.start()
    deadline = time.monotonic() + 5
    while len(looks) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(looks) >= 2 and waiter.is_alive()  # it found the lock held, and looks again and again
    assert makers.runs == 0  # without making anything itself

    # The other process stores its bytes and records them: the waiter answers with them.
    data = b"made elsewhere"
    svc.storage.put(key, io.BytesIO(data))
    other = variants.Stored(key, hashlib.sha256(data).hexdigest(), len(data))
    svc.store.variants.record(job.id, other, token)
    waiter.join(timeout=5)

    assert result["stored"] == other
    assert makers.runs == 0


def test_a_variant_whose_maker_died_is_made_once_its_lock_lapses(svc):
    job = _stored(svc, None)
    source = variants.source_of(job, "image")
    variant = Variant(128, "png", None)
    key = storage_key(job.id, "image", variant)
    token, _ = svc.store.variants.begin(job.id, key, lease=1)  # its maker dies holding it

    started = time.monotonic()
    stored = variants.made(svc, job, source, variant, CountingMakers())

    assert 0.5 < time.monotonic() - started < 5
    with Image.open(svc.storage.open(stored.key)) as made:
        assert made.format == "PNG" and made.size == (128, 96)


def test_deleting_a_job_deletes_its_variants_and_no_other_jobs(svc):
    job_a, job_b = _stored(svc, "key_aaaaaaaaaaaaaaaa"), _stored(svc, "key_bbbbbbbbbbbbbbbb")
    makers = CountingMakers()
    made_a = [variants.made(svc, job_a, variants.source_of(job_a, "image"), v, makers)
              for v in (Variant(64, "webp", 50), Variant(512, "avif", 75), Variant(800, "jpeg", 90))]
    made_b = variants.made(svc, job_b, variants.source_of(job_b, "image"), Variant(64, "webp", 50), makers)
    assert {m.key for m in made_a} | {made_b.key} <= _files(svc)

    assert remove_job(svc, job_a.id)

    left = _files(svc)
    assert not {m.key for m in made_a} & left
    assert {job_b.storage_key, made_b.key} <= left
    assert svc.store.variants.take_all(job_a.id) == []
    assert variants.stored(svc, job_b, variants.source_of(job_b, "image"), Variant(64, "webp", 50)) == made_b


def test_retention_deletes_the_variants_of_the_jobs_it_removes(svc):
    old = _stored(svc, None, created_at=time.time() - (svc.config.job_retention_days + 1) * 86400)
    new = _stored(svc, None)
    makers = CountingMakers()
    old_variant = variants.made(svc, old, variants.source_of(old, "image"), Variant(256, "webp", 75), makers)
    new_variant = variants.made(svc, new, variants.source_of(new, "image"), Variant(256, "webp", 75), makers)

    assert purge_expired(svc) == 1

    left = _files(svc)
    assert old_variant.key not in left and old.storage_key not in left
    assert new_variant.key in left


def test_a_job_deleted_while_its_variant_is_made_leaves_no_file(svc):
    job = _stored(svc, None)
    source = variants.source_of(job, "image")
    real_put = svc.storage.put

    def put_then_delete(key, data, **kwargs):
        real_put(key, data, **kwargs)
        if "-image-" in key:
            remove_job(svc, job.id)  # the DELETE lands after the bytes are stored, before they are recorded

    svc.storage.put = put_then_delete
    with pytest.raises(JobNotFound):
        variants.made(svc, job, source, Variant(640, "webp", 75), CountingMakers())

    assert not any("-image-" in name for name in _files(svc))
    assert svc.store.variants.take_all(job.id) == []


def test_an_original_that_does_not_decode_is_a_422_and_frees_the_lock(svc):
    job = _stored(svc, None)
    svc.storage.put(job.storage_key, io.BytesIO(b"\xff\xd8\xff not a jpeg after all"))
    source = variants.source_of(job, "image")
    variant = Variant(64, "webp", 75)

    with pytest.raises(VariantFailed):
        variants.made(svc, job, source, variant, CountingMakers())

    look = svc.store.variants.look(job.id, storage_key(job.id, "image", variant))
    assert look.stored is None and not look.making
