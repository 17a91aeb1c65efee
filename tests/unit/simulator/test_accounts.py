"""Several BFL accounts in one simulator process (`--account NAME=PORT[:KEY]`), over HTTP: each its own key,
tasks, limits, balance, stats and `refuse` switch (503 or 402)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devtools.processes import stop_process
from devtools.stack import SimAccount, start_simulator_accounts
from simulator.__main__ import parse_command
from simulator.accounts import Account, parse_account


@pytest.fixture(scope="module")
def process_and_accounts() -> Iterator[tuple[Any, dict[str, SimAccount]]]:
    process, accounts = start_simulator_accounts(["eu", "us"], None, "--task-delay", "0.05")
    try:
        yield process, accounts
    finally:
        code = stop_process(process)
    assert code == 0, "the simulator should stop every account and exit cleanly on SIGTERM"


@pytest.fixture()
def accounts(process_and_accounts) -> dict[str, SimAccount]:
    """Both accounts, each reset to its start-up settings and empty stats."""
    found = process_and_accounts[1]
    for account in found.values():
        requests.post(f"{account.base}/_sim/reset", timeout=5).raise_for_status()
    return found


def _submit(account: SimAccount, prompt: str = "a lighthouse", key: str | None = None) -> requests.Response:
    return requests.post(f"{account.base}/v1/flux-dev", json={"prompt": prompt},
                         headers={"x-key": key or account.key}, timeout=5)


def _accepted(account: SimAccount, prompt: str = "a lighthouse") -> str:
    answer = _submit(account, prompt)
    assert answer.status_code == 200, answer.text
    return answer.json()["id"]


def _settings(account: SimAccount, **values: Any) -> requests.Response:
    return requests.post(f"{account.base}/_sim/settings", json=values, timeout=5)


def _switch(account: SimAccount, **values: Any) -> None:
    answer = _settings(account, **values)
    assert answer.status_code == 200, answer.text


def _stats(account: SimAccount) -> dict[str, Any]:
    return requests.get(f"{account.base}/_sim/stats", timeout=5).json()


def _credits(account: SimAccount) -> requests.Response:
    return requests.get(f"{account.base}/v1/credits", headers={"x-key": account.key}, timeout=5)


# -- the process and its command line ------------------------------------------


def test_each_account_prints_its_own_address_then_the_ready_line_names_the_first(process_and_accounts):
    process, accounts = process_and_accounts
    eu, us = accounts["eu"], accounts["us"]
    assert process.startup_lines == [f"simulator account eu listening on {eu.base}",
                                     f"simulator account us listening on {us.base}",
                                     f"simulator listening on {eu.base}"]
    assert eu.base != us.base and eu.base.startswith("http://127.0.0.1:")
    assert (eu.key, us.key) == ("sim-eu-key", "sim-us-key")
    assert not any(account.key in line for account in accounts.values() for line in process.startup_lines)


def test_an_account_is_name_port_and_an_optional_key():
    assert parse_account("eu=0") == Account("eu", 0, "sim-eu-key")
    assert parse_account("client-a=8901:k:with:colons") == Account("client-a", 8901, "k:with:colons")
    for bad in ("eu", "=0", "eu=", "eu=port", "eu=70000", "eu=0:", "e u=0", "-eu=0"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_account(bad)


def test_flags_are_every_accounts_starting_settings():
    settings, accounts = parse_command(["--account", "eu=0", "--account", "us=0:K", "--max-active", "3",
                                        "--credits", "40"])
    assert [a.name for a in accounts] == ["eu", "us"] and accounts[1].api_key == "K"
    assert (settings.max_active, settings.credits, settings.refuse) == (3, 40, None)
    assert parse_command(["--port", "0"])[1] == []  # without --account: the one account of old


@pytest.mark.parametrize("argv", [
    ["--account", "eu=0", "--account", "eu=0"],
    ["--account", "client-a=0", "--account", "CLIENT_A=0"],  # both BFL_CLIENT_A_* to fluxhook
    ["--account", "eu=8901", "--account", "us=8901"],
    ["--account", "eu=0", "--public-url", "https://sim.example"],
])
def test_accounts_that_cannot_run_together_stop_the_command(argv, capsys):
    with pytest.raises(SystemExit) as stopped:
        parse_command(argv)
    assert stopped.value.code == 2 and "python -m simulator" in capsys.readouterr().err


# -- each account its own --------------------------------------------------------


def test_each_account_refuses_the_others_key(accounts):
    eu, us = accounts["eu"], accounts["us"]
    assert _submit(eu, key=us.key).status_code == 401
    assert _submit(us, key=eu.key).status_code == 401
    assert requests.get(f"{us.base}/v1/credits", headers={"x-key": eu.key}, timeout=5).status_code == 401
    assert _credits(eu).status_code == 200 and _credits(us).status_code == 200
    assert _stats(eu)["submitted"] == 0 and _stats(us)["submitted"] == 0


def test_an_accounts_tasks_are_unknown_to_the_other(accounts):
    eu, us = accounts["eu"], accounts["us"]
    task_id = _accepted(eu)
    mine = requests.get(f"{eu.base}/v1/get_result", params={"id": task_id}, headers={"x-key": eu.key}, timeout=5)
    theirs = requests.get(f"{us.base}/v1/get_result", params={"id": task_id}, headers={"x-key": us.key}, timeout=5)
    assert mine.status_code == 200 and mine.json()["id"] == task_id
    assert mine.json()["status"] in ("Pending", "Ready")
    assert theirs.status_code == 404
    assert requests.get(f"{us.base}/_sim/tasks/{task_id}", timeout=5).status_code == 404
    assert (_stats(eu)["submitted"], _stats(us)["submitted"]) == (1, 0)


def test_limits_settings_and_resets_are_each_accounts_own(accounts):
    eu, us = accounts["eu"], accounts["us"]
    _switch(eu, max_active=1)
    _accepted(eu, "[pending] one")
    assert _submit(eu, "[pending] two").status_code == 429
    _accepted(us, "[pending] one")
    _accepted(us, "[pending] two")  # us keeps the start-up limit
    assert requests.get(f"{us.base}/_sim/settings", timeout=5).json()["max_active"] == 24
    requests.post(f"{eu.base}/_sim/reset", timeout=5).raise_for_status()
    assert _stats(eu)["submitted"] == 0 and _stats(us)["submitted"] == 2 and _stats(us)["active"] == 2


def test_each_account_spends_its_own_balance(accounts):
    eu, us = accounts["eu"], accounts["us"]
    _switch(eu, credits=10)
    _switch(us, credits=3)
    _accepted(eu)  # flux-dev: 2.5 credits
    _accepted(us)
    assert (_credits(eu).json(), _credits(us).json()) == ({"credits": 7.5}, {"credits": 0.5})
    assert _submit(us).status_code == 402 and _submit(eu).status_code == 200


# -- the switch ----------------------------------------------------------------


def test_refuse_503_makes_only_that_account_answer_503_with_the_retry_after_given(accounts):
    eu, us = accounts["eu"], accounts["us"]
    _switch(eu, refuse=503, refuse_retry_after=30)
    for prompt in ("one", "two"):
        refused = _submit(eu, prompt)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "30"
        assert isinstance(refused.json()["detail"], str) and refused.json()["detail"]
    _accepted(us)
    assert _credits(eu).status_code == 200  # down for submissions only: its balance still reads
    counted = _stats(eu)
    assert (counted["submitted"], counted["refused"], counted["rejected_503"]) == (0, 2, 2)
    assert (_stats(us)["submitted"], _stats(us)["refused"]) == (1, 0)

    _switch(eu, refuse=None)
    _accepted(eu)
    assert (_stats(eu)["submitted"], _stats(eu)["refused"]) == (1, 2)


def test_refuse_503_without_retry_after_sends_no_header(accounts):
    eu = accounts["eu"]
    _switch(eu, refuse=503)
    refused = _submit(eu)
    assert refused.status_code == 503 and "Retry-After" not in refused.headers


def test_refuse_402_answers_insufficient_credits_and_a_balance_of_0_until_switched_off(accounts):
    eu, us = accounts["eu"], accounts["us"]
    _switch(eu, credits=100)
    _accepted(eu)
    _switch(eu, refuse=402)
    refused = _submit(eu)
    assert refused.status_code == 402 and refused.json() == {"detail": "Insufficient credits"}
    assert "Retry-After" not in refused.headers
    assert _credits(eu).json() == {"credits": 0}
    assert _credits(us).json()["credits"] > 0
    _accepted(us)
    counted = _stats(eu)
    assert (counted["submitted"], counted["refused"], counted["rejected_402"]) == (1, 1, 1)

    _switch(eu, refuse=None)
    assert _credits(eu).json() == {"credits": 97.5}  # the real balance: the refused submission cost nothing
    _accepted(eu)
    assert _stats(eu)["submitted"] == 2


def test_a_wrong_key_is_answered_401_even_while_refusing(accounts):
    eu, us = accounts["eu"], accounts["us"]
    _switch(eu, refuse=503)
    assert _submit(eu, key=us.key).status_code == 401  # a wrong key is still a wrong key
    assert _stats(eu)["refused"] == 0


def test_out_of_capacity_still_answers_503_beside_the_switch(accounts):
    eu = accounts["eu"]
    _switch(eu, out_of_capacity=True)
    refused = _submit(eu)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "2"
    assert (_stats(eu)["rejected_503"], _stats(eu)["refused"], _stats(eu)["submitted"]) == (1, 0, 0)


@pytest.mark.parametrize("values", [{"refuse": 500}, {"refuse": "503"}, {"refuse": True}, {"refuse": 503.0},
                                    {"refuse_retry_after": -1}, {"refuse_retry_after": 1.5},
                                    {"refuse_retry_after": "30"}])
def test_the_switch_takes_only_null_503_or_402_and_whole_seconds(accounts, values):
    answer = _settings(accounts["eu"], **values)
    assert answer.status_code == 400 and next(iter(values)) in answer.json()["detail"]


def test_a_reset_turns_the_switch_off(accounts):
    eu = accounts["eu"]
    _switch(eu, refuse=402, refuse_retry_after=5)
    requests.post(f"{eu.base}/_sim/reset", timeout=5).raise_for_status()
    settings = requests.get(f"{eu.base}/_sim/settings", timeout=5).json()
    assert (settings["refuse"], settings["refuse_retry_after"]) == (None, None)
    _accepted(eu)
