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


def test_a_jobs_signed_links_wait_in_its_keys_lane_for_links_once_its_key_is_known():
    lanes = Lanes(())
    lanes.remember_link("job_A1", "key_a")
    lanes.remember_link("job_B1", "key_b")
    lanes.remember_link("job_X1", None)  # an admin token's job: the shared lane
    assert lanes.of(environ("/v1/jobs/job_A1/image", "w=256&token=abc")) == ("link:key_a", 1)
    assert lanes.of(environ("/v1/jobs/job_B1/poster", "token=abc")) == ("link:key_b", 1)
    for path in ("/v1/jobs/job_X1/image", "/v1/jobs/job_new/image", "/v1/jobs/job_A1"):
        assert lanes.of(environ(path, "token=abc")) == (LINKS, 1), path
    # A key's own bearer requests stay in its key's lane, apart from its links'.
    lanes.remember("fhk_a", "key_a", 1)
    assert lanes.of(environ("/v1/jobs/job_A1/image", "token=abc", authorization="Bearer fhk_a")) == ("key:key_a", 1)
