"""``fluxhook batch submit|show|list|cancel|download`` as real processes against the session's stack: a JSON Lines
file in, its progress until it ends (or, with ``show --watch``, a batch made before), its files out; and in every test
a second key, to which none of it exists. The pure helpers (reading the file, the progress line) are in
tests/unit/cli/test_batches.py."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

from cli_helpers import clean_env, run_cli, started_cli
from conftest import API_TOKEN
from devtools.processes import ROOT, free_port, wait_until
from fluxhook import client as fc
from key_helpers import make_key


def batch_cli(stack, action: str, *args: str, token: str = API_TOKEN) -> subprocess.CompletedProcess:
    return run_cli("batch", action, "--url", stack.base_url, "--token", token, *args)


def _file(tmp_path, *lines: str, name: str = "items.jsonl"):
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _submitted(result: subprocess.CompletedProcess) -> str:
    """The batch id the command named on stderr as it made the batch."""
    found = re.search(r"^batch (bat_\w+): ", result.stderr, re.M)
    assert found, result.stderr
    return found.group(1)


def test_submit_shows_progress_until_every_item_is_stored_then_download_writes_them(stack, api, sim, tmp_path):
    mine, a = make_key(api)
    other, b = make_key(api)
    items = _file(tmp_path, '{"input": {"prompt": "a catalog shot 0"}, "metadata": {"sku": 0}}',
                  '{"input": {"prompt": "[jpeg] a catalog shot 1", "width": 512, "height": 512}}',
                  "",  # a blank line is skipped
                  '{"input": {"prompt": "a catalog shot 2"}}')

    submitted = batch_cli(stack, "submit", str(items), "--model", "flux-2-pro", "--metadata-json",
                        '{"run": "cli"}', token=mine["key"])

    assert submitted.returncode == 0, submitted.stderr
    batch = json.loads(submitted.stdout)
    assert batch["id"] == _submitted(submitted) and batch["metadata"] == {"run": "cli"}
    assert batch["status"] == "ended" and batch["counts"]["stored"] == batch["counts"]["total"] == 3
    # Not a terminal: plain lines, the first as it was made (its items queued, or already at BFL on a quick stack),
    # the last as it ended; no bar redrawn in place.
    # While it runs, its items sent beside those ended.
    assert re.search(rf"^{batch['id']} 0% \d/3 sent, 0/3 ended, 0\.0 s: \d (queued|submitted)", submitted.stderr,
                     re.M), \
        submitted.stderr
    assert re.search(rf"^{batch['id']} 100% 3/3 ended, [\d.]+ s: 3 stored; [\d.]+ credits$", submitted.stderr, re.M)
    assert "\r" not in submitted.stderr and f"fluxhook batch download {batch['id']} DIR" in submitted.stderr
    jobs = {j["batch_index"]: j for j in a.get("/v1/jobs", params={"batch_id": batch["id"]}).json()["jobs"]}
    assert jobs[0]["metadata"] == {"sku": 0} and jobs[1]["prompt"] == "[jpeg] a catalog shot 1"
    assert sim.task(jobs[1]["bfl_id"])["prompt"] == "[jpeg] a catalog shot 1"

    shown = batch_cli(stack, "show", batch["id"], token=mine["key"])
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["counts"]["stored"] == 3

    out = tmp_path / "out" / "shots"
    downloaded = batch_cli(stack, "download", batch["id"], str(out), token=mine["key"])

    assert downloaded.returncode == 0, downloaded.stderr
    assert sorted(p.name for p in out.iterdir()) == ["00000.png", "00001.jpg", "00002.png", "results.jsonl"]
    for index, job in jobs.items():
        name = f"{index:05d}.{'jpg' if index == 1 else 'png'}"
        assert (out / name).read_bytes() == sim.image_bytes(job["bfl_id"])
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["index"], r["job_id"], r["status"]) for r in results] == [(i, jobs[i]["id"], "stored") for i in range(3)]
    assert "wrote 3 files" in downloaded.stderr and str(out) in downloaded.stderr
    with fc.Client(stack.base_url, mine["key"]) as client:  # what the command wrote is the client's results
        streamed = [(r["index"], r["job_id"], r["status"]) for r in client.batches.results(batch["id"])]
    assert streamed == [(r["index"], r["job_id"], r["status"]) for r in results]
    assert [r["metadata"] for r in results] == [{"sku": 0}, {}, {}]
    # Named from a metadata field: item 0's sku names its file; the others, without one, keep their index names.
    named = tmp_path / "named"
    by_sku = batch_cli(stack, "download", batch["id"], str(named), "--name-from", "sku", token=mine["key"])
    assert by_sku.returncode == 0, by_sku.stderr
    assert sorted(p.name for p in named.iterdir()) == ["0.png", "00001.jpg", "00002.png", "results.jsonl"]
    assert (named / "0.png").read_bytes() == sim.image_bytes(jobs[0]["bfl_id"])
    # Again: the same files, replaced whole, and nothing else left behind.
    again = batch_cli(stack, "download", batch["id"], str(out), token=mine["key"])
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in out.iterdir()) == ["00000.png", "00001.jpg", "00002.png", "results.jsonl"]

    # The other key: none of it exists, and nothing is written.
    elsewhere = tmp_path / "theirs"
    for argv in (("show", batch["id"]), ("cancel", batch["id"]), ("download", batch["id"], str(elsewhere))):
        refused = batch_cli(stack, *argv, token=other["key"])
        assert refused.returncode == 2 and "not_found:" in refused.stderr and "(HTTP 404)" in refused.stderr, argv
        assert refused.stdout == ""
    assert not elsewhere.exists()
    mine = batch_cli(stack, "list", token=mine["key"])
    theirs = batch_cli(stack, "list", "--json", token=other["key"])
    assert mine.returncode == 0 and theirs.returncode == 0, (mine.stderr, theirs.stderr)
    assert mine.stdout.splitlines()[0].split() == ["ID", "STATUS", "MODEL", "CREATED", "ENDED", "COST", "ITEMS"]
    row = next(line for line in mine.stdout.splitlines() if line.startswith(batch["id"]))
    assert row.split()[1:3] == ["ended", "flux-2-pro"] and row.endswith("3: 3 stored")
    assert json.loads(theirs.stdout) == {"batches": []}


def test_an_item_that_fails_exits_1_and_the_download_has_the_others(stack, api, sim, tmp_path):
    mine, a = make_key(api)
    items = _file(tmp_path, '{"input": {"prompt": "a shot that works"}}', '{"input": {"prompt": "[error] a shot that fails"}}',
                  '{"input": {"prompt": "[content-moderated] a shot BFL refuses"}}')

    submitted = batch_cli(stack, "submit", str(items), "--model", "flux-2-pro", token=mine["key"])

    assert submitted.returncode == 1, submitted.stderr
    batch = json.loads(submitted.stdout)
    assert batch["status"] == "ended" and (batch["counts"]["stored"], batch["counts"]["failed"]) == (1, 1)
    assert (f"batch {batch['id']} ended: 1 of 3 items stored (1 failed, 1 moderated); "
            f"`fluxhook batch download {batch['id']} DIR` writes the stored files") in submitted.stderr

    downloaded = batch_cli(stack, "download", batch["id"], str(tmp_path / "out"), token=mine["key"])
    assert downloaded.returncode == 0, downloaded.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["00000.png", "results.jsonl"]
    assert "2 of 3 items have no file: results.jsonl says why" in downloaded.stderr
    results = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [(r["status"], (r["error"] or {}).get("code")) for r in results] == [
        ("stored", None), ("failed", "bfl_error"), ("moderated", "moderated")]


def test_no_wait_prints_the_id_and_cancel_ends_what_is_unsent(stack, api, sim, tmp_path):
    mine, a = make_key(api, max_active=1)
    other, b = make_key(api)
    items = _file(tmp_path, *(json.dumps({"input": {"prompt": f"[pending] held {n}"}}) for n in range(4)))

    submitted = batch_cli(stack, "submit", str(items), "--model", "flux-2-pro", "--no-wait", token=mine["key"])

    assert submitted.returncode == 0, submitted.stderr
    batch_id = submitted.stdout.strip()
    assert re.fullmatch(r"bat_\w{26}", batch_id) and f"fluxhook batch show {batch_id}" in submitted.stderr
    wait_until(lambda: a.get(f"/v1/batches/{batch_id}").json()["counts"]["submitted"] == 1, timeout=30,
               message="one item at BFL")
    refused = batch_cli(stack, "cancel", batch_id, token=other["key"])
    assert refused.returncode == 2 and "not_found" in refused.stderr
    assert a.get(f"/v1/batches/{batch_id}").json()["status"] == "running"

    canceled = batch_cli(stack, "cancel", batch_id, token=mine["key"])

    assert canceled.returncode == 0, canceled.stderr
    shown = json.loads(canceled.stdout)
    # The item BFL has goes on: it is paid for, and stored as any item is.
    assert shown["status"] == "canceled" and (shown["counts"]["aborted"], shown["counts"]["submitted"]) == (3, 1)
    assert f"batch {batch_id} canceled: 1 submitted, 3 aborted (so far: the items BFL has go on" in canceled.stderr
    again = batch_cli(stack, "cancel", batch_id, token=mine["key"])
    assert again.returncode == 2 and "already_ended:" in again.stderr and "(HTTP 409)" in again.stderr


def test_watching_gives_up_after_its_timeout_with_exit_4_and_a_canceled_batch_exits_1(stack, api, sim, tmp_path):
    mine, a = make_key(api)
    items = _file(tmp_path, '{"input": {"prompt": "[pending] never ends"}}', '{"input": {"prompt": "[pending] nor this"}}')

    timed_out = batch_cli(stack, "submit", str(items), "--model", "flux-2-pro", "--timeout", "1",
                        token=mine["key"])

    assert timed_out.returncode == 4, timed_out.stderr
    batch = json.loads(timed_out.stdout)
    assert batch["status"] == "running" and batch["id"] == _submitted(timed_out)
    assert f"batch {batch['id']} is still running after 1 s" in timed_out.stderr
    assert f"it goes on: fluxhook batch show {batch['id']}" in timed_out.stderr

    # Watched while it is canceled: the watch ends with the batch, exit 1.
    held = _file(tmp_path, '{"input": {"prompt": "[pending] held 0"}}', '{"input": {"prompt": "[pending] held 1"}}',
                 name="held.jsonl")
    watching = _watching(stack, held, mine["key"])
    try:
        batch_id = re.match(r"batch (bat_\w+): ", watching.stderr.readline()).group(1)
        # Both at BFL first: an item its cancel meets before it is sent ends aborted instead.
        wait_until(lambda: a.get(f"/v1/batches/{batch_id}").json()["counts"]["submitted"] == 2, timeout=30,
                   interval=0.2, message="both items at BFL")
        assert a.post(f"/v1/batches/{batch_id}/cancel").status_code == 200
        # Both go on: the batch ends with them (one stored, one failed at BFL).
        held_jobs = sorted(a.get("/v1/jobs", params={"batch_id": batch_id}).json()["jobs"],
                           key=lambda j: j["batch_index"])
        sim.complete(held_jobs[0]["bfl_id"])
        sim.complete(held_jobs[1]["bfl_id"], "error")
        out, err = watching.communicate(timeout=60)
    finally:
        watching.kill()
    assert watching.returncode == 1, err
    assert json.loads(out)["status"] == "canceled"
    assert f"batch {batch_id} was canceled: 1 of 2 items stored (1 failed)" in err

    # Interrupted: the batch goes on, and the command says how to follow or stop it.
    watching = _watching(stack, held, mine["key"])
    try:
        batch_id = re.match(r"batch (bat_\w+): ", watching.stderr.readline()).group(1)
        watching.send_signal(signal.SIGINT)
        out, err = watching.communicate(timeout=60)
    finally:
        watching.kill()
    assert watching.returncode == 130, err
    assert f"interrupted; the batch goes on: fluxhook batch show {batch_id}" in err and out == ""
    assert a.get(f"/v1/batches/{batch_id}").json()["status"] == "running"
    assert a.post(f"/v1/batches/{batch_id}/cancel").status_code == 200


def _watching(stack, path, token: str) -> subprocess.Popen:
    """``batch submit`` running on, its stderr read a line at a time."""
    return started_cli("batch", "submit", str(path), "--model", "flux-2-pro", "--url", stack.base_url, "--token", token)


def test_show_watch_follows_a_batch_made_before_until_it_ends_as_submit_does(stack, api, sim):
    mine, a = make_key(api)
    other, b = make_key(api)
    items = [{"input": {"prompt": f"[pending] watched later {n}"}} for n in range(2)]
    batch_id = a.post("/v1/batches", json={"model": "flux-2-pro", "items": items}).json()["id"]
    wait_until(lambda: a.get(f"/v1/batches/{batch_id}").json()["counts"]["submitted"] == 2, timeout=30,
               message="both items at BFL")

    # The other key: no such batch to watch, before anything is drawn.
    refused = batch_cli(stack, "show", batch_id, "--watch", token=other["key"])
    assert refused.returncode == 2 and "not_found:" in refused.stderr and "(HTTP 404)" in refused.stderr
    assert refused.stdout == ""

    watching = _showing(stack, batch_id, mine["key"])
    try:
        # Named, and drawn at once as it stands, as batch submit draws the batch it made.
        assert watching.stderr.readline() == (f"batch {batch_id}: 2 items of flux-2-pro (Ctrl-C stops watching; the "
                                              "batch goes on)\n")
        assert re.match(rf"{batch_id} 0% 2/2 sent, 0/2 ended, 0\.0 s: 2 submitted", watching.stderr.readline())
        for job in a.get("/v1/jobs", params={"batch_id": batch_id}).json()["jobs"]:
            sim.complete(job["bfl_id"])
        out, err = watching.communicate(timeout=60)
    finally:
        watching.kill()

    assert watching.returncode == 0, err
    ended = json.loads(out)
    assert ended["id"] == batch_id and ended["status"] == "ended" and ended["counts"]["stored"] == 2
    assert re.search(rf"^{batch_id} 100% 2/2 ended, [\d.]+ s: 2 stored; [\d.]+ credits$", err, re.M), err
    assert f"every item stored; `fluxhook batch download {batch_id} DIR` writes the files" in err
    assert b.get("/v1/batches").json()["batches"] == []

    # Watched once it has ended: drawn once, full, with nothing to interrupt.
    again = batch_cli(stack, "show", batch_id, "--watch", token=mine["key"])
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["counts"]["stored"] == 2
    assert again.stderr.splitlines()[0] == f"batch {batch_id}: 2 items of flux-2-pro"
    assert len(re.findall(rf"^{batch_id} 100% ", again.stderr, re.M)) == 1, again.stderr


def test_show_watch_gives_up_after_its_timeout_with_exit_4_and_a_canceled_batch_exits_1(stack, api, sim):
    mine, a = make_key(api)
    other, b = make_key(api)
    items = [{"input": {"prompt": f"[pending] held later {n}"}} for n in range(2)]
    batch_id = a.post("/v1/batches", json={"model": "flux-2-pro", "items": items}).json()["id"]
    refused = batch_cli(stack, "show", batch_id, "--timeout", "1", token=mine["key"])
    assert refused.returncode == 2 and "--timeout goes with --watch" in refused.stderr and refused.stdout == ""

    timed_out = batch_cli(stack, "show", batch_id, "--watch", "--timeout", "1", token=mine["key"])

    assert timed_out.returncode == 4, timed_out.stderr
    assert json.loads(timed_out.stdout)["status"] == "running"
    assert (f"batch {batch_id} is still running after 1 s (0 of 2 items ended); it goes on: fluxhook batch show "
            f"{batch_id}") in timed_out.stderr

    # Watched while it is canceled: the watch ends with the batch, exit 1.
    wait_until(lambda: a.get(f"/v1/batches/{batch_id}").json()["counts"]["submitted"] == 2, timeout=30,
               message="both items at BFL")
    watching = _showing(stack, batch_id, mine["key"])
    try:
        assert watching.stderr.readline().startswith(f"batch {batch_id}: 2 items")
        assert b.post(f"/v1/batches/{batch_id}/cancel").status_code == 404  # not the other key's to cancel
        assert a.post(f"/v1/batches/{batch_id}/cancel").status_code == 200
        held = sorted(a.get("/v1/jobs", params={"batch_id": batch_id}).json()["jobs"], key=lambda j: j["batch_index"])
        sim.complete(held[0]["bfl_id"])
        sim.complete(held[1]["bfl_id"], "error")
        out, err = watching.communicate(timeout=60)
    finally:
        watching.kill()
    assert watching.returncode == 1, err
    assert json.loads(out)["status"] == "canceled"
    assert f"batch {batch_id} was canceled: 1 of 2 items stored (1 failed)" in err
    assert b.get("/v1/batches").json()["batches"] == []


def _showing(stack, batch_id: str, token: str) -> subprocess.Popen:
    """``batch show --watch`` running on, its stderr read a line at a time."""
    return started_cli("batch", "show", batch_id, "--watch", "--url", stack.base_url, "--token", token)


def test_a_bad_file_is_refused_naming_its_line(stack, api, sim, tmp_path):
    mine, a = make_key(api)
    nowhere = ("--url", f"http://127.0.0.1:{free_port()}", "--token", API_TOKEN)  # refused before any request
    cases = [
        (_file(tmp_path, '{"prompt": "fine"}', "", '{"prompt": "broken",}', name="a.jsonl"), "a.jsonl, line 3 is not valid JSON"),
        (_file(tmp_path, '["a", "list"]', name="b.jsonl"), "line 1 is a JSON list, not an object"),
        (_file(tmp_path, "", "", name="e.jsonl"), "holds no items"),
        (tmp_path / "missing.jsonl", "cannot read"),
    ]
    for path, message in cases:
        result = run_cli("batch", "submit", str(path), "--model", "flux-2-pro", *nowhere)
        assert result.returncode == 2 and message in result.stderr, (message, result.stderr)
    result = run_cli("batch", "submit", str(tmp_path / "x"), *nowhere)
    assert result.returncode == 2 and "--model" in result.stderr
    result = run_cli("batch", "submit", "-", "--model", "flux-2-pro", "--no-wait", "--timeout", "5", *nowhere)
    assert result.returncode == 2 and "--timeout goes with watching" in result.stderr

    # What the server refuses names every bad item and its line, as POST /v1/batches refuses the same file as NDJSON
    # (the file is that body, line for line): a shorthand line is told to put its fields under 'input'.
    items = _file(tmp_path, '{"input": {"prompt": "fine"}}', "", '{"input": {"prompt": "too wide", "width": "wide"}}',
                  '{"prompt": "shorthand"}', '{"input": {"prompt": "x"}, "model": "flux-dev"}', '{"input": "a fox"}')
    refused = batch_cli(stack, "submit", str(items), "--model", "flux-2-pro", token=mine["key"])
    assert refused.returncode == 2 and "invalid_items:" in refused.stderr and "(HTTP 400)" in refused.stderr
    assert "4 of 5 items would be refused" in refused.stderr
    assert f"{items}, line 3 (item 1) input.width: " in refused.stderr
    assert f"{items}, line 4 (item 2) prompt: put 'prompt' under 'input'" in refused.stderr
    assert f"{items}, line 5 (item 3) model: a batch has one model, given once" in refused.stderr
    assert "`fluxhook batch submit` takes --model" in refused.stderr
    assert f"{items}, line 6 (item 4) input: 'input' must be a non-empty JSON object" in refused.stderr
    as_ndjson = a.post("/v1/batches", params={"model": "flux-2-pro"}, data=items.read_bytes(),
                       headers={"Content-Type": "application/x-ndjson"})
    assert as_ndjson.status_code == 400, as_ndjson.text
    assert [(x["index"], x["field"]) for x in as_ndjson.json()["error"]["items"]] == [
        (1, "input.width"), (2, "prompt"), (3, "model"), (4, "input")]
    assert a.get("/v1/batches").json()["batches"] == []


def test_stdin_and_an_idempotency_key_make_one_batch(stack, api, sim):
    mine, a = make_key(api)
    lines = '{"input": {"prompt": "[pending] from stdin 0"}}\n{"input": {"prompt": "[pending] from stdin 1"}}\n'
    argv = ["batch", "submit", "-", "--model", "flux-2-pro", "--no-wait", "--idempotency-key", "cli-run-1",
            "--url", stack.base_url, "--token", mine["key"]]

    first = subprocess.run([sys.executable, "-m", "fluxhook.cli", *argv], input=lines, capture_output=True, text=True,
                           cwd=ROOT, env=clean_env(), timeout=60)
    again = subprocess.run([sys.executable, "-m", "fluxhook.cli", *argv], input=lines, capture_output=True, text=True,
                           cwd=ROOT, env=clean_env(), timeout=60)

    assert first.returncode == 0 and again.returncode == 0, (first.stderr, again.stderr)
    assert first.stdout == again.stdout and [b["id"] for b in a.get("/v1/batches").json()["batches"]] == [
        first.stdout.strip()]
    assert a.post(f"/v1/batches/{first.stdout.strip()}/cancel").status_code == 200


def test_cancel_wait_waits_for_the_items_bfl_has_and_prints_the_final_counts(stack, api, sim, tmp_path):
    mine, a = make_key(api, max_active=1)
    items = _file(tmp_path, *(json.dumps({"input": {"prompt": f"[pending] waited {n}"}}) for n in range(3)))
    batch_id = batch_cli(stack, "submit", str(items), "--model", "flux-2-pro", "--no-wait",
                         token=mine["key"]).stdout.strip()
    wait_until(lambda: a.get(f"/v1/batches/{batch_id}").json()["counts"]["submitted"] == 1, timeout=30,
               message="one item at BFL")
    refused = batch_cli(stack, "cancel", batch_id, "--timeout", "5", token=mine["key"])
    assert refused.returncode == 2 and "--timeout goes with --wait" in refused.stderr

    argv = ["batch", "cancel", batch_id, "--wait", "--url", stack.base_url, "--token", mine["key"]]
    waiting = subprocess.Popen([sys.executable, "-m", "fluxhook.cli", *argv], cwd=ROOT, env=clean_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: a.get(f"/v1/batches/{batch_id}").json()["status"] == "canceled", timeout=30,
                   message="the batch canceled")
        assert waiting.poll() is None  # its item at BFL has not ended: nor has the wait
        (held,) = [j for j in a.get("/v1/jobs", params={"batch_id": batch_id}).json()["jobs"] if j["bfl_id"]]
        sim.complete(held["bfl_id"])
        out, err = waiting.communicate(timeout=60)
    finally:
        waiting.kill()
    assert waiting.returncode == 0, err
    final = json.loads(out)
    assert final["status"] == "canceled" and final["ended_at"]
    assert (final["counts"]["stored"], final["counts"]["aborted"], final["counts"]["submitted"]) == (1, 2, 0)
    assert f"batch {batch_id} canceled: 1 submitted, 2 aborted; waiting for the items BFL has to end" in err
    assert f"batch {batch_id} canceled and ended: 1 stored, 2 aborted" in err, err
