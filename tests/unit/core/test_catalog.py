"""The model catalog (fluxhook/core/catalog.py, catalog.toml): the shipped file, BFL_MODELS_FILE merged over it and
checked at start one line per problem, and what the limits read from it (plain functions)."""

from __future__ import annotations

import json
import math

import pytest

from fluxhook.core import catalog
from fluxhook.core.accounts import DEFAULT_MODEL_LIMITS
from fluxhook.core.catalog import SHIPPED_CATALOG, Price
from fluxhook.core.config import Config
from fluxhook.core.errors import ConfigError

ENV = {"REDIS_URL": "redis://localhost/0", "SECRET_KEY": "s" * 32, "API_TOKENS": "token-0123456789"}


def test_the_shipped_catalog_has_every_family_each_entry_with_its_source():
    text = catalog.SHIPPED.read_text()
    names = set(SHIPPED_CATALOG.models)
    assert {"flux-2-pro", "flux-2-max", "flux-2-flex", "flux-2-klein-4b", "flux-2-klein-9b", "flux-2-pro-preview",
            "flux-kontext-pro", "flux-kontext-max", "flux-pro-1.1", "flux-pro-1.1-ultra", "flux-dev",
            "flux-3-video", "flux-pro-1.1-ultra-finetuned"} <= names
    assert text.count("source = ") == len(names)
    # BFL's account endpoints are no generation endpoints: never in the catalog, never reachable through it.
    assert not names & {"finetune", "delete_finetune", "my_finetunes", "finetune_details", "get_result", "credits"}
    assert SHIPPED_CATALOG.get("flux-3-video").kind == "video"
    assert all(m.region == "finetune" for m in SHIPPED_CATALOG.models.values() if m.name.endswith("-finetuned"))


def test_bfl_model_limits_default_to_the_catalogs_lower_limits():
    assert DEFAULT_MODEL_LIMITS == SHIPPED_CATALOG.limits() == (("flux-kontext-max", 6), ("flux-3-video", 5))
    assert Config.from_env(ENV).bfl_model_limits == DEFAULT_MODEL_LIMITS


def test_the_closest_names_of_a_typo():
    assert SHIPPED_CATALOG.closest("flux-2-prp")[0] == "flux-2-pro"
    assert SHIPPED_CATALOG.closest("qqqq") == []


def test_an_operators_file_adds_and_corrects_entries_and_their_limits(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text('[models."flux-2-pro"]\nkind = "image"\nprice = { rule = "megapixel", first = 4.0, each = 2.0 }\n'
                    '[models."flux-new"]\nkind = "image"\nmax_active = 3\n')
    config = Config.from_env({**ENV, "BFL_MODELS_FILE": str(path)})
    assert config.catalog.get("flux-2-pro").price == Price("megapixel", first=4.0, each=2.0)
    assert config.catalog.get("flux-new").price is None  # no price: its requests go alone
    assert config.catalog.get("flux-2-max") == SHIPPED_CATALOG.get("flux-2-max")
    assert ("flux-new", 3) in config.bfl_model_limits
    # BFL_MODEL_LIMITS still overrides them.
    assert Config.from_env({**ENV, "BFL_MODELS_FILE": str(path), "BFL_MODEL_LIMITS": "none"}).bfl_model_limits == ()
    as_json = tmp_path / "models.json"
    as_json.write_text(json.dumps({"models": {"flux-json": {"kind": "video", "price": {"rule": "second", "credits": 9}}}}))
    assert Config.from_env({**ENV, "BFL_MODELS_FILE": str(as_json)}).catalog.get("flux-json").price.credits == 9.0


@pytest.mark.parametrize("text, problem", [
    ('[models."Bad Name"]\nkind = "image"\n', "not a BFL model name"),
    ('[models."flux-x"]\nkind = "audio"\n', "'kind' must be one of image, video"),
    ('[models."flux-x"]\nkind = "image"\nprice = { rule = "token", credits = 1 }\n', "'rule' one of image, megapixel"),
    ('[models."flux-x"]\nkind = "image"\nprice = { rule = "megapixel", first = 3 }\n', "price 'each' must be a number"),
    ('[models."flux-x"]\nkind = "image"\nmax_active = 0\n', "'max_active' must be a positive whole number"),
    ('[models."flux-x"]\nkind = "image"\ncolour = "red"\n', "unknown field(s) colour"),
    ('models = 3\n', "must hold a 'models' table"),
    ('[models\n', "is not valid TOML"),
])
def test_a_bad_file_stops_the_start_with_one_line_per_problem(tmp_path, text, problem):
    path = tmp_path / "models.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as stopped:
        Config.from_env({**ENV, "BFL_MODELS_FILE": str(path)})
    [line] = stopped.value.problems
    assert line.startswith("BFL_MODELS_FILE") and problem in line, line


def test_a_missing_file_is_one_problem_naming_it(tmp_path):
    with pytest.raises(ConfigError) as stopped:
        Config.from_env({**ENV, "BFL_MODELS_FILE": str(tmp_path / "nowhere.toml")})
    [line] = stopped.value.problems
    assert "nowhere.toml" in line and "cannot read" in line


def test_a_models_description_as_get_v1_models_lists_it():
    described = SHIPPED_CATALOG.get("flux-2-pro").describe()
    assert described["price"] == {"rule": "megapixel", "first_megapixel": 3.0, "each_further_megapixel": 1.5}
    assert (described["kind"], described["input_images"]) == ("image", 8)
    assert SHIPPED_CATALOG.get("flux-kontext-max").describe()["max_active"] == 6
    assert all(math.isfinite(m.max_output_mp) for m in SHIPPED_CATALOG.models.values())
