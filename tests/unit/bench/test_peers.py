"""bench-peers' pure parts: the figures from what a run recorded (``bench.peers_figures``), LiteLLM's config.yaml and
environment (``bench.peers_litellm``) and the TLS front's reading of a CONNECT (``bench.peers_tls``)."""

from __future__ import annotations

import math

import pytest
import yaml

from bench import peers_litellm
from bench.peers_figures import Outcome, commandstats_calls, duplicated, figures, render, rows, slots_busy
from bench.peers_tls import connect_target


def _task(prompt: str, start: float, end: float | None) -> dict:
    return {"prompt": prompt, "created_at": start, "completed_at": end}


def test_slots_all_held_for_the_whole_window_read_all_busy():
    tasks = [_task(f"p{n}", 0.0, 9.0) for n in range(24)]
    assert slots_busy(tasks, 24) == pytest.approx(1.0)


def test_slots_half_held_read_half_busy_and_a_task_still_running_holds_its_slot_to_the_end():
    tasks = [_task("a", 0.0, 10.0), _task("b", 5.0, None)]
    assert slots_busy(tasks, 2) == pytest.approx((10 + 5) / (2 * 10))
    assert math.isnan(slots_busy([], 24))


def test_a_prompt_run_twice_is_one_duplicate():
    assert duplicated([_task("a", 0, 1), _task("a", 2, 3), _task("b", 0, 1)]) == 1


def test_redis_commands_are_summed_over_commandstats():
    info = {"cmdstat_get": {"calls": 10, "usec": 5}, "cmdstat_evalsha": {"calls": 7}, "errorstat_ERR": {"count": 1}}
    assert commandstats_calls(info) == 17


def _outcomes() -> list[Outcome]:
    kept = Outcome("a", "p1", sent=0.0, opened_at=10.0, url="u1", later=True)
    expired = Outcome("a", "p2", sent=0.0, opened_at=12.0, url="u2", later=False)
    gone = Outcome("a", "p3", sent=0.0, error="client gone", gone=True)
    refused = Outcome("b", "p4", sent=5.0, error="HTTP 429")
    return [kept, expired, gone, refused]


def test_figures_count_what_opens_later_and_what_was_paid_and_lost():
    tasks = [_task("p1", 0, 9), _task("p2", 0, 9), _task("p3", 1, 10)]
    before = {"received": 0, "polls_total": 0, "submitted": 0, "rejected_429": 0}
    after = {"received": 4, "polls_total": 12, "submitted": 3, "rejected_429": 1}
    run = figures(_outcomes(), before, after, tasks, 24, cpu=3.0, rss=100.0, redis_calls=None)

    assert (run.requests, run.usable_now, run.usable_later) == (4, 2, 1)
    assert (run.p50, run.p99) == (pytest.approx(11.0), pytest.approx(11.98))
    assert run.calls_per_image == pytest.approx((4 + 12) / 2)
    # Three tasks paid: one image kept, one whose URL expired, one whose client had gone; the 429 cost nothing.
    assert (run.paid, run.lost, run.lost_expired, run.lost_gone, run.duplicated) == (3, 2, 1, 1, 0)
    assert run.errors == {"client gone": 1, "HTTP 429": 1}
    assert run.redis_per_image is None


def test_redis_commands_are_per_image_that_opens_later():
    tasks = [_task("p1", 0, 9)]
    run = figures(_outcomes()[:1], {}, {"submitted": 1}, tasks, 24, cpu=1.0, rss=1.0, redis_calls=120)
    assert run.redis_per_image == 120


def test_the_table_has_both_columns_and_the_second_apps_p99_beside_alone():
    a = figures(_outcomes(), {}, {"submitted": 3}, [], 24, 1.0, 1.0, 50)
    lines = rows(a, a, alone={"fluxhook": 9.5, "litellm": 10.25})
    assert all(len(line) == 3 for line in lines)
    assert lines[-1][0] == "second app p99 (alone)" and "(9.5 s)" in lines[-1][1] and "(10.2 s)" in lines[-1][2]
    text = render("base", lines)
    assert text.splitlines()[0] == "[base]" and "LiteLLM" in text.splitlines()[1]


def test_litellm_config_is_the_docs_shape_with_the_simulator_as_api_base(tmp_path):
    path = peers_litellm.write_config(tmp_path / "config.yaml", "http://127.0.0.1:9999")
    loaded = yaml.safe_load(path.read_text())

    (entry,) = loaded["model_list"]
    assert entry["model_name"] == "flux-dev"
    assert entry["litellm_params"] == {"model": "black_forest_labs/flux-dev", "api_key": "os.environ/BFL_API_KEY",
                                       "api_base": "http://127.0.0.1:9999"}
    assert loaded["general_settings"] == {"master_key": peers_litellm.MASTER_KEY}
    assert "redis" not in path.read_text().lower()


def test_litellm_env_sends_https_only_through_the_front_and_names_the_simulator_as_bfl(tmp_path):
    env = peers_litellm.proxy_env("key", "http://127.0.0.1:1", "http://127.0.0.1:2", tmp_path / "c.pem")
    assert env["BFL_API_BASE"] == "http://127.0.0.1:1" and env["HTTPS_PROXY"] == "http://127.0.0.1:2"
    assert "HTTP_PROXY" not in env and "127.0.0.1" in env["NO_PROXY"]
    assert env["SSL_CERT_FILE"].endswith("c.pem")


@pytest.mark.parametrize("head, host", [
    (b"CONNECT simulator.bfl.ai:443 HTTP/1.1\r\nHost: simulator.bfl.ai\r\n\r\n", "simulator.bfl.ai"),
    (b"GET / HTTP/1.1\r\n\r\n", None),
    (b"", None),
])
def test_the_front_reads_the_host_a_connect_asks_for(head, host):
    assert connect_target(head) == host
