"""Whose line a request waits in (receiver/lanes.py): told from its head alone, and no turns for made-up tokens."""

from __future__ import annotations

from receiver.lanes import ADMIN, BFL, DASHBOARD, LINKS, OTHER, UNKNOWN, Lanes


def environ(path: str = "/v1/jobs", query: str = "", **headers: str) -> dict:
    found = {"PATH_INFO": path, "QUERY_STRING": query}
    found.update({"HTTP_" + name.upper(): value for name, value in headers.items()})
    return found


def test_a_checked_key_waits_in_its_own_lane_with_its_weight_and_a_made_up_one_in_the_unknown_lane():
    lanes = Lanes(("admin-token-0123456789",))
    lanes.remember("fhk_a_secret", "key_a", 3)
    assert lanes.of(environ(authorization="Bearer fhk_a_secret")) == ("key:key_a", 3)
    assert lanes.of(environ(x_key="fhk_a_secret")) == ("key:key_a", 3)
    for n in range(3):  # each made-up token lands in the one lane: inventing tokens buys no turns
        assert lanes.of(environ(authorization=f"Bearer fhk_made_up_{n}")) == (UNKNOWN, 1)


def test_admin_tokens_callbacks_links_and_sessions_each_have_a_lane():
    lanes = Lanes(("admin-token-0123456789",))
    assert lanes.of(environ(authorization="Bearer admin-token-0123456789")) == (ADMIN, 1)
    assert lanes.of(environ("/webhooks/bfl/abc")) == (BFL, 1)
    assert lanes.of(environ("/v1/jobs/job_1/image", "token=abc")) == (LINKS, 1)
    assert lanes.of(environ("/dashboard/", cookie="fluxhook_session=xyz")) == (DASHBOARD, 1)
    assert lanes.of(environ("/healthz")) == (OTHER, 1)


def test_the_keys_remembered_are_bounded(monkeypatch):
    import receiver.lanes as lanes_module

    monkeypatch.setattr(lanes_module, "KNOWN_KEYS", 2)
    lanes = Lanes(())
    for n in range(3):
        lanes.remember(f"fhk_{n}", f"key_{n}", 1)
    assert lanes.of(environ(authorization="Bearer fhk_0")) == (UNKNOWN, 1)  # the oldest forgotten
    assert lanes.of(environ(authorization="Bearer fhk_2")) == ("key:key_2", 1)
