"""Every name a job accepts as an end user can be managed by an admin, over real HTTP against the Procfile's processes:
a name holding '/', '..', '//' or markup is read, limited, blocked and unblocked by the API (percent-encoded), the CLI
and the Python client, each acting on that end user alone: never on a shorter name it starts with, nor on another
key's end user its words point at; the dashboard shows such a name as text."""

from __future__ import annotations

import html
from urllib.parse import quote

from cli_helpers import run_cli
from conftest import API, API_TOKEN
from devtools.processes import wait_until
from fluxhook.core.end_users import named
from helpers import assert_error, sign_in
from key_helpers import make_key

SCRIPT = "<script>alert(1)</script>"
# Each beside the names it could be mistaken for: 'a/b' for 'a', 'x/block' for 'x' blocked, '/x' and 'x//y' for the
# names with their slashes merged, '..' for the key itself.
NAMES = ("a/b", "../", "..", ".", "/x", "x/", "x//y", "x/block", "x/unblock/block", SCRIPT, "100% a?b#c&d=e")


def _path(key_id: str, name: str, tail: str = "") -> str:
    """The end user's admin path, its name one percent-encoded segment (dots too, which a URL would resolve)."""
    part = quote(name, safe="")
    return f"/v1/keys/{key_id}/end_users/{'%2E' * len(part) if part in ('.', '..') else part}{tail}"


def _post(client: API, name: str):
    return client.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "[pending] named"},
                                         "end_user": name})


def _cli(admin: API, key_id: str, *args: str):
    return run_cli("keys", "end-users", "--url", admin.base_url, "--token", API_TOKEN, key_id, *args)


def _refused(client: API, name: str):
    """The job for the blocked end user, once the web process knows the key has end users of its own (within a
    second of the key's first one); before that it is made and ends canceled as its sender reads the block."""
    [answer] = wait_until(lambda: (answer := _post(client, name)).status_code == 403 and [answer], timeout=10,
                          interval=0.1, message=f"{name!r} refused")
    return answer


def test_every_accepted_end_user_name_is_limited_blocked_and_unblocked_as_itself_alone(api, sim):
    admin = api
    created, app = make_key(admin)
    other, other_app = make_key(admin)
    # The attack: a name whose words walk from the key's path to another key's end user.
    names = (*NAMES, f"../../{other['id']}/end_users/x")

    for name in names:
        assert _post(app, name).status_code == 202, name
        limited = admin.request("PUT", _path(created["id"], name), json={"requests_per_minute": 5})
        assert limited.status_code == 200, (name, limited.text)
        assert (limited.json()["end_user"], limited.json()["limits"]["requests_per_minute"]) == (name, 5)
        shown = admin.get(_path(created["id"], name)).json()
        assert (shown["end_user"], shown["today"]["jobs"], shown["blocked"]) == (name, 1, False), shown

        blocked = admin.post(_path(created["id"], name, "/block"))
        assert blocked.status_code == 200 and blocked.json()["end_user"] == name, (name, blocked.text)
        assert named(name) in assert_error(_refused(app, name), 403, "end_user_blocked")["message"]
        assert admin.get(_path(created["id"], name)).json()["blocked_reason"] == "manual"
        unblocked = admin.post(_path(created["id"], name, "/unblock"))
        assert unblocked.status_code == 200 and unblocked.json()["blocked"] is False, (name, unblocked.text)
        assert _post(app, name).status_code == 202, name

    # Each acted on itself alone: the names they start with, or merge into, were never limited nor blocked...
    for near in ("a", "x", "x/y", "x/unblock"):
        assert admin.get(_path(created["id"], near)).json()["limits"]["requests_per_minute"] is None, near
    assert admin.get(f"/v1/keys/{created['id']}").json()["id"] == created["id"]
    # ...and the other key, whose end user 'x' the walking name points at, sees nothing of it.
    assert admin.get(_path(other["id"], "x")).json()["limits"]["requests_per_minute"] is None
    assert _post(other_app, "x").status_code == 202
    assert admin.post(_path(other["id"], "x", "/block")).json()["end_user"] == "x"
    assert _post(app, f"../../{other['id']}/end_users/x").status_code == 202


def test_the_cli_and_the_client_block_any_name_and_the_dashboard_shows_it_as_text(api, sim):
    admin = api
    created, app = make_key(admin)
    other, other_app = make_key(admin)
    for name in ("a/b", "..", SCRIPT):
        assert _post(app, name).status_code == 202
        assert _post(other_app, name).status_code == 202

    for name in ("a/b", ".."):
        done = _cli(admin, created["id"], "--block", name)
        assert done.returncode == 0, done.stderr
        assert f'"end_user": "{name}"' in done.stdout and '"blocked": true' in done.stdout
        assert_error(_refused(app, name), 403, "end_user_blocked")
        # The other key's end user of the same name goes on.
        assert _post(other_app, name).status_code == 202
        done = _cli(admin, created["id"], "--unblock", name)
        assert done.returncode == 0 and '"blocked": false' in done.stdout, done.stderr
    assert admin.get(_path(created["id"], "a")).json()["blocked"] is False

    http, _ = sign_in(admin.base_url)
    page = http.get(f"{admin.base_url}/keys/{created['id']}", timeout=10)
    assert page.status_code == 200
    assert SCRIPT not in page.text and html.escape(SCRIPT) in page.text
