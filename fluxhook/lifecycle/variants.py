"""A variant of a job's stored image or video poster: the stored one when it was made, else made here once
over every web process, stored beside its original in the same store and recorded (``store/variants.py``).

Making takes CPU, so its bytes are made in the capacity its caller gives it (``Makers``: the web process's variant
makers, in turns between owners). A request whose variant another process is making waits for that one's record
instead of making it again, and makes it itself only if that maker's lock lapses unrecorded (it died)."""

from __future__ import annotations

import hashlib
import io
import logging
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from fluxhook.core.errors import Gone, JobNotFound, VariantFailed, VariantsBusy
from fluxhook.core.holds import VARIANT_MAKE_BOUND, VARIANT_MAKING_LEASE
from fluxhook.core.job import Job
from fluxhook.core.variants import Variant, storage_key
from fluxhook.media import posters
from fluxhook.media.variants import Unmakeable
from fluxhook.services import Services
from fluxhook.store.owners import owner_of
from fluxhook.store.variants import Stored

log = logging.getLogger("fluxhook.variants")

# The longest a variant is waited for once a maker has it (``Makers.make``'s bound), and a maker's hold on it.
MAKE_SECONDS = VARIANT_MAKE_BOUND
MAKING_LEASE = VARIANT_MAKING_LEASE
# An original larger than this is not read into memory to be made into a variant (FLUX's are a few MB).
MAX_SOURCE_BYTES = 64 * 1024 * 1024
# How long a request waits for a variant made elsewhere before it is answered 503 (asked again, it is served).
WAIT_SECONDS = 20.0
LOOK_EVERY = 0.05


class Makers(Protocol):
    """The capacity variants are made in: ``make`` returns ``variant``'s bytes of the image ``original()`` returns,
    read and made in ``owner``'s turn (``Unmakeable`` when they cannot be made), waiting at most ``MAKE_SECONDS`` once a
    maker has it."""

    def make(self, owner: str, original: Callable[[], bytes], variant: Variant) -> bytes: ...


@dataclass(frozen=True)
class Source:
    """The stored file a variant is made of: which of the job's (``image``, ``poster``), its storage key, width and
    content type."""

    name: str
    key: str
    width: int
    content_type: str


def source_of(job: Job, name: str) -> Source | None:
    """The job's stored ``name`` file (``image`` or ``poster``) as a variant's source; None when it has none."""
    if name == "image" and job.image and job.storage_key:
        return Source("image", job.storage_key, int(job.image["width"]), job.image["content_type"])
    if name == "poster" and job.video and job.poster:
        width = posters.width_of(int(job.video["width"]), int(job.video["height"]))
        return Source("poster", job.poster["key"], width, job.poster["content_type"])
    return None


def stored(svc: Services, job: Job, source: Source, variant: Variant) -> Stored | None:
    """The variant as stored already (one ``HGET``), or None."""
    return svc.store.variants.stored(job.id, storage_key(job.id, source.name, variant))


def made(svc: Services, job: Job, source: Source, variant: Variant, makers: Makers) -> Stored:
    """The variant, stored: made now in the owner's turn of ``makers`` unless another process makes it (then its
    record, once written). ``VariantsBusy`` past ``WAIT_SECONDS`` waiting for another; ``VariantFailed`` when the
    original cannot be made into it; ``JobNotFound`` when the job was deleted meanwhile."""
    key = storage_key(job.id, source.name, variant)
    give_up = time.monotonic() + WAIT_SECONDS
    while True:
        result = _make_once(svc, job, source, variant, key, makers)
        if result is not None:
            return result
        # Another process holds its lock: wait for its record, or for the lock to lapse unrecorded.
        while True:
            look = svc.store.variants.look(job.id, key)
            if look.stored is not None:
                return look.stored
            if not look.making:
                break
            if time.monotonic() >= give_up:
                raise VariantsBusy("this variant is being made by another web process; ask again in a moment",
                                   retry_after=1)
            time.sleep(LOOK_EVERY)


def _make_once(svc: Services, job: Job, source: Source, variant: Variant, key: str, makers: Makers) -> Stored | None:
    """Make and store the variant under its lock; the stored one if it was made meanwhile; None while another process
    holds its lock."""
    records = svc.store.variants
    token, found = records.begin(job.id, key, MAKING_LEASE)
    if token is None:
        return found
    started = time.monotonic()
    try:
        # Read in its turn, not before: the originals in memory are the makers' few, not every waiting request's.
        data = makers.make(owner_of(job.key_id), lambda: _read(svc, source), variant)
        digest = hashlib.sha256(data).hexdigest()
        svc.storage.put(key, io.BytesIO(data), sha256=digest)
    except Unmakeable as exc:
        records.abandon(job.id, key, token)
        raise VariantFailed(f"the stored {source.name} cannot be made into this variant ({exc}); without w, format "
                            "and q it is served as it is") from None
    except BaseException:
        records.abandon(job.id, key, token)
        raise
    made_ = Stored(key, digest, len(data))
    records.record(job.id, made_, token)
    if records.job_gone(job.id):
        # Deleted while this was made: its erase may have listed its variants before this one was recorded.
        svc.storage.delete_many(records.take_all(job.id) or [key])
        raise JobNotFound(f"no job {job.id!r}")
    log.info("variant made", extra={"job_id": job.id, "variant": key, "bytes": len(data),
                                    "ms": round((time.monotonic() - started) * 1000, 1)})
    return made_


def _read(svc: Services, source: Source) -> bytes:
    """The stored original's bytes (a maker process is handed them whole: a few MB at most)."""
    original = svc.storage.open(source.key)
    if original is None:
        raise Gone(f"the stored {source.name} is missing")
    with original:
        data = original.read(MAX_SOURCE_BYTES + 1)
    if len(data) > MAX_SOURCE_BYTES:
        raise Unmakeable(f"the stored {source.name} is larger than {MAX_SOURCE_BYTES:,} bytes")
    return data
