"""What SECRET_KEY guards (fluxhook/core/signing.py): webhook-URL tokens, per-job webhook secrets and signed image
URLs; values kept in Redis sealed: deterministic under one key, opened by every key of a rotation, and a value kept in
the clear told apart (the migration seals it: tests/unit/store/test_migrations.py).
"""

from __future__ import annotations

import itertools
import types

import itsdangerous.timed
import pytest

from conftest import SECRET_KEY
from fluxhook.core import signing
from fluxhook.core.job import new_job_id
from fluxhook.core.signing import Sealer

KEY = "unit-test-secret-key-0123456789"
OTHER_KEY = "another-secret-key-9876543210"


def job_id() -> str:
    return new_job_id()


def _tamper_signature(token: str) -> str:
    """Change the first signature character (all 6 of its bits count, unlike the last one's)."""
    payload, _, sig = token.rpartition(".")
    return f"{payload}.{'B' if sig[0] == 'A' else 'A'}{sig[1:]}"


def test_webhook_token_round_trip():
    jid = job_id()
    token = signing.webhook_token(KEY, jid)
    assert signing.job_id_from_webhook_token(KEY, token) == jid
    assert "/" not in token and "?" not in token and "#" not in token


def test_webhook_token_names_its_job_s_model_signed_and_one_minted_without_it_still_reads():
    jid = job_id()
    named = signing.webhook_token(KEY, jid, "flux-3-video")
    assert signing.webhook_token_claims(KEY, named) == (jid, "flux-3-video")
    assert signing.job_id_from_webhook_token(KEY, named) == jid
    assert signing.webhook_token_claims(KEY, signing.webhook_token(KEY, jid)) == (jid, None)
    # Another model in the same payload keeps the old signature: refused.
    other = signing.webhook_token(KEY, jid, "flux-2-pro")
    assert signing.webhook_token_claims(KEY, other.split(".")[0] + "." + named.split(".")[1]) is None


@pytest.mark.parametrize("claims", [[], ["job"], ["job", "model", "more"], [1, "model"], ["job", 2], {"a": 1}, 7])
def test_webhook_token_claims_of_another_shape_even_signed_are_none(claims):
    token = signing._serializer((KEY,), signing._WEBHOOK_URL_SALT).dumps(claims)
    assert signing.webhook_token_claims(KEY, token) is None
    assert signing.job_id_from_webhook_token(KEY, token) is None


def test_webhook_token_for_another_secret_key_is_none():
    token = signing.webhook_token(OTHER_KEY, job_id())
    assert signing.job_id_from_webhook_token(KEY, token) is None


def test_webhook_token_tampered_is_none():
    jid = job_id()
    token = signing.webhook_token(KEY, jid)
    tampered = _tamper_signature(token)
    assert signing.job_id_from_webhook_token(KEY, tampered) is None
    # swapping the payload for another job's id keeps the old signature: refused
    other = signing.webhook_token(KEY, job_id())
    spliced = other.split(".")[0] + "." + token.split(".")[1]
    assert signing.job_id_from_webhook_token(KEY, spliced) is None


@pytest.mark.parametrize("garbage", ["", "x", ".", "abc.def", "a" * 500, "%%%", "\u00e9.\u00e9"])
def test_webhook_token_garbage_is_none(garbage):
    assert signing.job_id_from_webhook_token(KEY, garbage) is None


def test_webhook_token_and_image_token_are_not_interchangeable():
    jid = job_id()
    assert signing.job_id_from_webhook_token(KEY, signing.file_token(KEY, jid, "image")) is None
    assert signing.file_token_valid(KEY, signing.webhook_token(KEY, jid), jid, "image", 3600) is False


def test_job_webhook_secret_differs_between_jobs_and_keys_and_is_stable():
    a, b = job_id(), job_id()
    secret = signing.job_webhook_secret(KEY, a)
    assert secret == signing.job_webhook_secret(KEY, a)
    assert secret != signing.job_webhook_secret(KEY, b)
    assert secret != signing.job_webhook_secret(OTHER_KEY, a)
    assert isinstance(secret, str) and len(secret) >= 32
    assert a not in secret and KEY not in secret
    assert secret != signing.webhook_token(KEY, a)


def test_image_token_valid_for_its_job_only():
    a, b = job_id(), job_id()
    token = signing.file_token(KEY, a, "image")
    assert signing.file_token_valid(KEY, token, a, "image", 3600) is True
    assert signing.file_token_valid(KEY, token, b, "image", 3600) is False
    assert signing.file_token_valid(OTHER_KEY, token, a, "image", 3600) is False


def _mint_image_token_at(monkeypatch, when: float, jid: str) -> str:
    monkeypatch.setattr(itsdangerous.timed, "time", types.SimpleNamespace(time=lambda: when))
    try:
        return signing.file_token(KEY, jid, "image")
    finally:
        monkeypatch.undo()


def test_image_token_expires_after_max_age(monkeypatch):
    import time

    jid = job_id()
    old = _mint_image_token_at(monkeypatch, time.time() - 7200, jid)
    assert signing.file_token_valid(KEY, old, jid, "image", 3600) is False
    assert signing.file_token_valid(KEY, old, jid, "image", 7100) is False
    assert signing.file_token_valid(KEY, old, jid, "image", 10_000) is True


def test_image_token_from_the_future_is_refused(monkeypatch):
    import time

    jid = job_id()
    future = _mint_image_token_at(monkeypatch, time.time() + 7200, jid)
    assert signing.file_token_valid(KEY, future, jid, "image", 3600) is False


def test_image_token_negative_max_age_refuses_fresh_token():
    jid = job_id()
    assert signing.file_token_valid(KEY, signing.file_token(KEY, jid, "image"), jid, "image", -1) is False


def test_image_token_tampered_is_invalid():
    jid = job_id()
    token = signing.file_token(KEY, jid, "image")
    tampered = _tamper_signature(token)
    assert signing.file_token_valid(KEY, tampered, jid, "image", 3600) is False


@pytest.mark.parametrize("garbage", ["", "x", "...", "a.b.c", "a" * 300, "\u00e9\u00e9.x.y"])
def test_image_token_garbage_is_false(garbage):
    assert signing.file_token_valid(KEY, garbage, job_id(), "image", 3600) is False


def test_job_webhook_url_shape():
    jid = job_id()
    url = signing.job_webhook_url("https://hooks.example.com", KEY, jid)
    prefix = "https://hooks.example.com/webhooks/bfl/"
    assert url.startswith(prefix)
    token = url[len(prefix):]
    assert token and "/" not in token
    assert signing.job_id_from_webhook_token(KEY, token) == jid
    assert KEY not in url
    assert signing.job_webhook_secret(KEY, jid) not in url


def test_job_webhook_url_differs_per_job():
    a, b = job_id(), job_id()
    assert signing.job_webhook_url("http://localhost:8000", KEY, a) != signing.job_webhook_url(
        "http://localhost:8000", KEY, b)


KINDS = signing.FILE_KINDS


def test_each_kind_has_its_own_token():
    job_id = "job_01TESTSIGNEDLINKS"
    tokens = {kind: signing.file_token(SECRET_KEY, job_id, kind) for kind in KINDS}
    assert len(set(tokens.values())) == len(KINDS)
    for minted, asked in itertools.product(KINDS, KINDS):
        assert signing.file_token_valid(SECRET_KEY, tokens[minted], job_id, asked, 60) is (minted == asked)


def test_an_unknown_kind_has_no_link():
    with pytest.raises(ValueError):
        signing.file_token(SECRET_KEY, "job_x", "everything")
    assert signing.file_token_valid(SECRET_KEY, signing.file_token(SECRET_KEY, "job_x", "image"), "job_x", "nope", 60) is False


def _window_start(jid: str, window: int) -> int:
    """The first second of one of ``jid``'s windows after 1,700,000,000: its offset past a multiple of ``window``."""
    return 1_700_000_000 - 1_700_000_000 % window + window + signing.window_offset(jid, window)


@pytest.mark.parametrize(("ttl", "window"), [(60, 30), (3600, 3600), (60, 1), (5, 7)])
def test_every_read_in_a_jobs_window_gives_one_link_open_at_least_the_ttl_after_the_read(ttl, window):
    jid = "job_01JQ0000000000000000000042"
    start = _window_start(jid, window)
    reads = [start + offset / 4 for offset in range(window * 4)]  # every quarter second of the window
    times = {signing.link_times(now, ttl, window, jid) for now in reads}
    assert times == {signing.LinkTimes(start, ttl + window - 1)}
    for now in reads:
        # The last second it opens (its age at most max_age) is at or past the read's own TTL.
        assert start + ttl + window - 1 >= int(now + ttl)
    # Its own turn: the second before the window gives the last window's link, its next window's first the next one.
    assert signing.link_times(start - 0.5, ttl, window, jid).signed_at == start - window
    assert signing.link_times(start + window, ttl, window, jid).signed_at == start + window


def test_a_window_of_one_second_is_a_new_link_each_second_valid_for_the_ttl():
    assert signing.link_times(1_700_000_123.9, 60, 1, job_id()) == signing.LinkTimes(1_700_000_123, 60)


# A catalog's ids as the service makes them (ULIDs), fixed: the spread below is the hash's, the same on every run.
CATALOG = [f"job_01JQ{n:022d}" for n in range(1_000)]


@pytest.mark.parametrize("window", [3600, 60])
def test_a_catalogs_links_turn_evenly_over_the_window_never_together(window):
    turns = [signing.window_offset(jid, window) for jid in CATALOG]
    per_second = [turns.count(second) for second in range(window)]
    # As even as chance: at most a few a second, and every tenth of the window holds about a tenth of the catalog.
    assert max(per_second) <= max(6, 2 * len(CATALOG) // window)
    tenths = [sum(per_second[t * window // 10:(t + 1) * window // 10]) for t in range(10)]
    assert min(tenths) >= 70 and max(tenths) <= 130, tenths
    # Stable: the hash of the id, not of the process (Python's hash() would differ in the next process).
    assert turns == [signing.window_offset(jid, window) for jid in CATALOG]
    assert signing.window_offset("job_01JQ0000000000000000000042", 3600) == 2859


def test_at_a_jobs_own_turn_its_link_changes_and_another_jobs_does_not():
    ttl, window = 3600, 3600
    turning, other = CATALOG[:2]
    turn = _window_start(turning, window)
    assert signing.window_offset(other, window) != signing.window_offset(turning, window)
    before, after = (signing.link_times(at, ttl, window, turning) for at in (turn - 1, turn))
    assert before.signed_at != after.signed_at
    assert (signing.file_token(KEY, turning, "image", before.signed_at)
            != signing.file_token(KEY, turning, "image", after.signed_at))
    assert (signing.link_times(turn - 1, ttl, window, other).signed_at
            == signing.link_times(turn, ttl, window, other).signed_at)
    # The link read in the last second before the turn still opens its full TTL after that read.
    assert before.signed_at + before.max_age >= turn - 1 + ttl


def _valid_at(monkeypatch, when: float, token: str, jid: str, max_age: int, keys=KEY) -> bool:
    monkeypatch.setattr(itsdangerous.timed, "time", types.SimpleNamespace(time=lambda: when))
    try:
        return signing.file_token_valid(keys, token, jid, "image", max_age)
    finally:
        monkeypatch.undo()


def test_a_windowed_link_is_the_same_token_and_opens_from_the_read_for_the_ttl_then_closes(monkeypatch):
    jid, ttl, window = job_id(), 60, 30
    start = _window_start(jid, window)
    first, last = start + 0.2, start + 29.9  # the first and the last moment of one of its 30-s windows
    early, late = signing.link_times(first, ttl, window, jid), signing.link_times(last, ttl, window, jid)
    token = signing.file_token(KEY, jid, "image", early.signed_at)
    assert signing.file_token(KEY, jid, "image", late.signed_at) == token  # byte-identical
    assert _valid_at(monkeypatch, last + ttl, token, jid, late.max_age)  # the last read's full TTL
    assert not _valid_at(monkeypatch, early.signed_at + late.max_age + 1, token, jid, late.max_age)
    # Read with the per-second tokens of before, the last read's link would not have opened its TTL.
    assert not _valid_at(monkeypatch, last + ttl, token, jid, ttl)


def test_a_windowed_link_is_signed_with_the_newest_key_and_ends_when_its_key_is_dropped(monkeypatch):
    jid, now = job_id(), 1_700_000_010.0
    token = signing.file_token([OTHER_KEY, KEY], jid, "image", signing.link_times(now, 60, 30, jid).signed_at)
    assert _valid_at(monkeypatch, now, token, jid, 89, keys=[KEY])  # KEY, the newest, signed it
    assert not _valid_at(monkeypatch, now, token, jid, 89, keys=[OTHER_KEY])  # KEY rotated away: it ends


# --- Sealed ---

OLD, NEW = "o" * 32, "n" * 32
URL = "https://delivery.example/a.png?se=2026-11-23&sig=abc%2Fdef"


def test_a_sealed_text_hides_it_opens_to_it_and_seals_the_same_each_time():
    sealer = Sealer((NEW,))
    sealed = sealer.seal_text(URL)
    assert "sig" not in sealed and "delivery" not in sealed
    assert sealer.seal_text(URL) == sealed
    assert sealer.open_text(sealed) == URL


def test_every_key_of_a_rotation_opens_what_it_sealed_and_the_newest_seals():
    before, after = Sealer((OLD,)), Sealer((OLD, NEW))
    assert after.open_text(before.seal_text(URL)) == URL
    assert after.seal_text(URL) == Sealer((NEW,)).seal_text(URL)
    assert set(after.sealings(URL)) == {before.seal_text(URL), after.seal_text(URL)}
    assert after.open(before.seal(b"{}")) == b"{}"


def test_a_value_no_key_opens_is_none_and_one_kept_unsealed_is_told_apart():
    assert Sealer((NEW,)).open_text(Sealer((OLD,)).seal_text(URL)) is None
    assert Sealer((NEW,)).open(Sealer((OLD,)).seal(b"{}")) is None
    assert Sealer((NEW,)).open_text("s1:not base64!") is None
    assert Sealer.is_sealed(Sealer((OLD,)).seal_text(URL)) and Sealer.is_sealed(Sealer((OLD,)).seal(b"{}"))
    assert not Sealer.is_sealed(URL) and not Sealer.is_sealed(b'{"id": "x"}')
    assert Sealer((NEW,)).open_text(URL) is None and Sealer((NEW,)).open(b'{"id": "x"}') is None
