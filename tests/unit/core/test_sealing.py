"""Values kept in Redis sealed (``fluxhook.core.sealing``): deterministic under one key, opened by every key of a
rotation, and a value kept in the clear told apart (the migration seals it: tests/unit/store/test_migrations.py)."""

from __future__ import annotations

from fluxhook.core.sealing import Sealer

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
