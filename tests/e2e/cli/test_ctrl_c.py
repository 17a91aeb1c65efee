"""A Ctrl-C to a watching command (``submit --wait``, ``wait``, ``batch submit``, ``batch show --watch``, ``batch cancel
--wait``) as real processes against the session's stack, sent at the hardest moment: while the command is writing the
line that first names its job's or batch's id (its stderr a full pipe, so that write blocks until the test reads). It
must say what goes on and how to follow or stop it; and the other key sees none of it. A Ctrl-C while a batch is
watched is in tests/e2e/cli/test_batch_commands.py; the rule is in tests/unit/cli/test_exits.py and what a watched
batch leaves going in tests/unit/cli/test_batches.py."""

from __future__ import annotations

import signal

from cli_helpers import FullStderr, run_cli
from devtools.processes import wait_until
from key_helpers import make_key


def _interrupted_while_naming(stack, token: str, *args: str) -> tuple[int, str, str]:
    """The command's exit code, stdout and stderr after a SIGINT while it is blocked writing its first line to
    stderr."""
    stderr = FullStderr()
    process = stderr.start(*args, "--url", stack.base_url, "--token", token)
    try:
        wait_until(lambda: FullStderr.writing(process), timeout=60, message="the command writing its first line")
        process.send_signal(signal.SIGINT)
        err = stderr.read()
        out, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    return process.returncode, out, err


def test_batch_submit_interrupted_while_naming_its_batch_says_it_goes_on_and_how_to_stop_it(stack, api, sim,
                                                                                              tmp_path):
    mine, a = make_key(api)
    other, b = make_key(api)
    items = tmp_path / "items.jsonl"
    items.write_text('{"input": {"prompt": "[pending] held 0"}}\n{"input": {"prompt": "[pending] held 1"}}\n')

    code, out, err = _interrupted_while_naming(stack, mine["key"], "batch", "submit", str(items), "--model",
                                               "flux-2-pro")

    (batch,) = a.get("/v1/batches").json()["batches"]
    assert code == 130 and out == "", err
    assert err.splitlines()[-1] == (f"interrupted; the batch goes on: fluxhook batch show {batch['id']} "
                                    f"(fluxhook batch cancel {batch['id']} stops it)"), err
    assert a.get(f"/v1/batches/{batch['id']}").json()["status"] == "running"
    # The other key: no batch of its own, and this one does not exist for it.
    assert b.get("/v1/batches").json()["batches"] == []
    assert b.get(f"/v1/batches/{batch['id']}").status_code == 404
    assert a.post(f"/v1/batches/{batch['id']}/cancel").status_code == 200


def test_batch_cancel_wait_interrupted_while_naming_its_batch_says_its_items_at_bfl_go_on(stack, api, sim):
    mine, a = make_key(api, max_active=1)
    other, b = make_key(api)
    items = [{"input": {"prompt": f"[pending] waited {n}"}} for n in range(3)]
    batch_id = a.post("/v1/batches", json={"model": "flux-2-pro", "items": items}).json()["id"]
    wait_until(lambda: a.get(f"/v1/batches/{batch_id}").json()["counts"]["submitted"] == 1, timeout=30,
               message="one item at BFL")
    assert b.post(f"/v1/batches/{batch_id}/cancel").status_code == 404  # not the other key's to cancel

    code, out, err = _interrupted_while_naming(stack, mine["key"], "batch", "cancel", batch_id, "--wait")

    assert code == 130 and out == "", err
    assert err.splitlines()[-1] == (f"interrupted; batch {batch_id} stays canceled and its items at BFL go on: "
                                    f"fluxhook batch show {batch_id}"), err
    canceled = a.get(f"/v1/batches/{batch_id}").json()
    assert canceled["status"] == "canceled" and canceled["counts"]["submitted"] == 1 and not canceled["ended_at"]
    assert b.get("/v1/batches").json()["batches"] == []


def test_submit_wait_interrupted_while_naming_its_job_says_it_goes_on_and_how_to_stop_it(stack, api, sim):
    mine, a = make_key(api)
    other, b = make_key(api)

    # Its first line (the job's status) comes as the first wait for it ends, after --timeout's 2 s at most.
    code, out, err = _interrupted_while_naming(stack, mine["key"], "submit", "--prompt", "[pending] held",
                                               "--wait", "--timeout", "2")

    (job,) = a.get("/v1/jobs").json()["jobs"]
    assert code == 130 and out == "", err
    assert err.splitlines()[-1] == (f"interrupted; the job goes on: fluxhook show {job['id']} "
                                    f"(fluxhook cancel {job['id']} stops it)"), err
    assert a.get(f"/v1/jobs/{job['id']}").json()["status"] == "submitted"
    assert b.get("/v1/jobs").json()["jobs"] == [] and b.get(f"/v1/jobs/{job['id']}").status_code == 404


def test_wait_interrupted_while_naming_its_job_says_it_goes_on_and_how_to_stop_it(stack, api, sim):
    mine, a = make_key(api)
    other, b = make_key(api)
    job = a.submit("[pending] waited for later")
    refused = run_cli("wait", job["id"], "--timeout", "2", "--url", stack.base_url, "--token", other["key"])
    assert refused.returncode == 2 and "not_found:" in refused.stderr  # not the other key's to wait on

    # Its first line (the job's status) comes as the first wait for it ends, after --timeout's 2 s at most.
    code, out, err = _interrupted_while_naming(stack, mine["key"], "wait", job["id"], "--timeout", "2")

    assert code == 130 and out == "", err
    assert err.splitlines()[-1] == (f"interrupted; the job goes on: fluxhook show {job['id']} "
                                    f"(fluxhook cancel {job['id']} stops it)"), err
    assert a.get(f"/v1/jobs/{job['id']}").json()["status"] == "submitted"
    assert b.get("/v1/jobs").json()["jobs"] == [] and b.get(f"/v1/jobs/{job['id']}").status_code == 404


def test_batch_show_watch_interrupted_while_naming_its_batch_says_it_goes_on_and_how_to_stop_it(stack, api, sim):
    mine, a = make_key(api)
    other, b = make_key(api)
    items = [{"input": {"prompt": f"[pending] watched later {n}"}} for n in range(2)]
    batch_id = a.post("/v1/batches", json={"model": "flux-2-pro", "items": items}).json()["id"]
    refused = run_cli("batch", "show", batch_id, "--watch", "--url", stack.base_url, "--token", other["key"])
    assert refused.returncode == 2 and "not_found:" in refused.stderr  # not the other key's to watch

    code, out, err = _interrupted_while_naming(stack, mine["key"], "batch", "show", batch_id, "--watch")

    assert code == 130 and out == "", err
    assert err.splitlines()[-1] == (f"interrupted; the batch goes on: fluxhook batch show {batch_id} "
                                    f"(fluxhook batch cancel {batch_id} stops it)"), err
    assert a.get(f"/v1/batches/{batch_id}").json()["status"] == "running"
    assert b.get("/v1/batches").json()["batches"] == []
    assert a.post(f"/v1/batches/{batch_id}/cancel").status_code == 200
