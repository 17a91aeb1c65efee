"""``GET /v1/models`` and the names the submission routes refuse, over HTTP against the Procfile's
processes: nothing but a catalog model the caller may use reaches BFL."""

from __future__ import annotations

import requests

from conftest import API_TOKEN
from helpers import assert_error
from key_helpers import make_key


def _bfl(api, path: str, body: dict, key: str = API_TOKEN):
    return requests.post(f"{api.base_url}{path}", json=body, headers={"x-key": key}, timeout=10)


def test_the_models_are_listed_with_their_prices(api):
    models = {m["name"]: m for m in api.get("/v1/models").json()["models"]}
    assert models["flux-2-pro"]["price"] == {"rule": "megapixel", "first_megapixel": 3.0, "each_further_megapixel": 1.5}
    assert models["flux-kontext-max"]["max_active"] == 6 and models["flux-3-video"]["kind"] == "video"
    assert models["flux-2-pro"]["max_active"] == 10_000  # no limit of its own: the account's (the suite's BFL_MAX_ACTIVE)
    assert "flux-usage-many" in models  # BFL_MODELS_FILE's (the suite's) beside the shipped ones


def test_an_app_key_sees_only_its_models(api):
    _, key = make_key(api, models=["flux-2-pro", "flux-2-max"])
    assert [m["name"] for m in key.get("/v1/models").json()["models"]] == ["flux-2-pro", "flux-2-max"]
    assert requests.get(f"{api.base_url}/v1/models", timeout=10).status_code == 401


def test_an_unknown_model_creates_nothing_and_sends_nothing(api, sim):
    error = assert_error(api.post("/v1/jobs", json={"model": "flux-2-prp", "input": {"prompt": "typo"}}),
                         400, "unknown_model")
    assert "did you mean flux-2-pro" in error["message"] and "GET /v1/models" in error["message"]
    assert_error(api.post("/v1/jobs", json={"model": "finetune", "input": {"prompt": "x"}}), 400, "unknown_model")
    # The BFL-compatible route answers as BFL does.
    for path in ("/v1/flux-2-prp", "/v1/finetune"):
        answer = _bfl(api, path, {"prompt": "x", "finetune_id": "ft"})
        assert (answer.status_code, answer.json()) == (404, {"detail": "Not Found"}), path
    # BFL's account routes are no model names at all: no route of fluxhook's serves them.
    for path in ("/v1/delete_finetune", "/v1/my_finetunes", "/v1/finetune_details"):
        assert _bfl(api, path, {"finetune_id": "ft"}).status_code == 404, path
    assert sim.stats()["submitted"] == 0


def test_a_slip_of_one_of_fluxhooks_own_paths_names_it(api, sim):
    answer = _bfl(api, "/v1/job", {"model": "flux-2-pro", "input": {"prompt": "x"}})
    assert (answer.status_code, answer.json()) == (404, {"detail": "Not Found: did you mean /v1/jobs?"})
    assert sim.stats()["submitted"] == 0


def test_the_simulator_serves_exactly_the_catalogs_models(sim):
    sim.settings(any_model=False)  # BFL's own list, as `make run` has it
    headers = {"x-key": "sim-key"}
    known = requests.post(f"{sim.url}/v1/flux-2-klein-9b-preview", json={"prompt": "x"}, headers=headers, timeout=10)
    assert known.status_code in (200, 401)  # routed (the key is the simulator's business)
    for name in ("flux-2-max-preview", "flux-pro-1.1-raw", "finetune"):
        gone = requests.post(f"{sim.url}/v1/{name}", json={"prompt": "x"}, headers=headers, timeout=10)
        assert (gone.status_code, gone.json()) == (404, {"detail": "Not Found"}), name
