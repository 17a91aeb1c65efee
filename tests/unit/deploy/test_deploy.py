"""deploy/: every file parses, runs the Procfile's two commands, and carries every variable.

The variables are not a hand-kept list: they are read from fluxhook/core/config.py (every name its
reader is asked for) and from the README's configuration table, so a variable added there and
forgotten here fails these tests. Pure file checks: no Docker, no network, no processes.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib

import pytest
import yaml

from devtools.processes import ROOT
from devtools.stack import procfile_commands

DEPLOY = ROOT / "deploy"
DEPLOY_README = DEPLOY / "README.md"

# Variables with a default that only suits a laptop: a deployment must set them even though
# the configuration does not refuse to start without them (PUBLIC_BASE_URL defaults
# to localhost, STORAGE_URL to a local directory; BFL_WEBHOOK_SECRET is the static URL's secret;
# BFL_API_KEY may be unset outside the dev run, but then BFL refuses every submission).
DEPLOY_ALSO_REQUIRED = {"PUBLIC_BASE_URL", "STORAGE_URL", "BFL_WEBHOOK_SECRET", "BFL_API_KEY"}
# Secrets never belong in a committed file's plain values.
SECRETS = {"SECRET_KEY", "API_TOKENS", "BFL_API_KEY", "BFL_WEBHOOK_SECRET", "REDIS_URL"}
MIN_GRACE_SECONDS = 30


# --------------------------------------------------------------------------------------------
# where the truth comes from: the Procfile, fluxhook/core/config.py, the README
# --------------------------------------------------------------------------------------------

def procfile() -> dict[str, str]:
    commands = procfile_commands(ROOT / "Procfile")
    assert set(commands) == {"web", "worker"}, commands
    return commands


def argv(command: str | list[str]) -> list[str]:
    """A command as its argument vector: exec form as is, shell form split like a shell does."""
    return list(command) if isinstance(command, list) else shlex.split(command)


PROCFILE_ARGV = {name: argv(command) for name, command in procfile().items()}


def config_variables() -> set[str]:
    """Every variable fluxhook/core/config.py asks its reader for."""
    source = (ROOT / "fluxhook" / "core" / "config.py").read_text()
    found = set(re.findall(r'(?:reader|self)\.\w+\(\s*"([A-Z][A-Z0-9_]*)"', source))
    assert {"REDIS_URL", "SECRET_KEY", "API_TOKENS", "BFL_API_KEY"} <= found, found
    return found


def config_required() -> set[str]:
    """The variables config.py refuses to start without."""
    source = (ROOT / "fluxhook" / "core" / "config.py").read_text()
    required = set(re.findall(r'reader\.\w+\(\s*"([A-Z][A-Z0-9_]*)"[^)]*required=True', source))
    # tokens() reads its variable as required.
    required |= set(re.findall(r'reader\.tokens\(\s*"([A-Z][A-Z0-9_]*)"', source))
    return required


def readme_configuration() -> dict[str, str]:
    """Variable name -> default column, from the README's "Configuration" table."""
    text = (ROOT / "README.md").read_text()
    section = re.search(r"^## Configuration\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README.md has no '## Configuration' section"
    table = {}
    for line in section.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 3:
            continue
        for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0]):
            table[name] = cells[-1]
    assert "REDIS_URL" in table, "could not read the README's configuration table"
    return table


ALL_VARIABLES = config_variables() | set(readme_configuration())
README_REQUIRED = {name for name, default in readme_configuration().items() if default.lower().startswith("required")}
DEPLOY_REQUIRED = README_REQUIRED | config_required() | DEPLOY_ALSO_REQUIRED


def test_sources_of_truth_agree():
    """The README's required variables are the ones config.py requires, and the deploy set holds the required ones."""
    assert config_required() <= README_REQUIRED, "config.py requires a variable the README calls optional"
    assert {"REDIS_URL", "SECRET_KEY", "API_TOKENS", "BFL_API_KEY", "PUBLIC_BASE_URL", "STORAGE_URL",
            "BFL_WEBHOOK_SECRET"} <= DEPLOY_REQUIRED
    assert config_variables() <= ALL_VARIABLES


def test_every_deploy_file_exists():
    for name in ("Dockerfile", "Dockerfile.dockerignore", "docker-compose.yml", "app.json", "render.yaml",
                 "fly.toml", "README.md", ".env.example"):
        assert (DEPLOY / name).is_file(), f"deploy/{name} is missing"


# --------------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------------

def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continuation lines joined."""
    instructions, pending = [], ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, rest = full.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def instructions(keyword: str) -> list[str]:
    return [rest for kw, rest in dockerfile() if kw == keyword]


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), arguments
    return value


def test_dockerfile_is_slim_python():
    known = {"FROM", "ENV", "WORKDIR", "COPY", "RUN", "USER", "EXPOSE", "HEALTHCHECK", "CMD", "ARG", "LABEL",
             "ENTRYPOINT"}
    assert {kw for kw, _ in dockerfile()} <= known
    (base,) = instructions("FROM")
    assert re.fullmatch(r"python:3\.1[1-9]-slim", base), base


def test_dockerfile_runs_as_non_root():
    users = instructions("USER")
    assert users, "the image must switch to an unprivileged user"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    order = [kw for kw, _ in dockerfile()]
    assert max(i for i, kw in enumerate(order) if kw == "USER") < order.index("CMD")


def test_dockerfile_copies_only_the_runtime_and_sources_exist():
    sources = set()
    for arguments in instructions("COPY"):
        parts = [p for p in shlex.split(arguments) if not p.startswith("--")]
        assert len(parts) >= 2, arguments
        sources.update(p.rstrip("/") for p in parts[:-1])
    for source in sources:
        assert (ROOT / source).exists(), f"COPY source {source} does not exist"
    assert sources == {"requirements.txt", "fluxhook", "receiver", "worker", "Procfile"}


def test_dockerfile_installs_runtime_requirements_only():
    runs = " ".join(instructions("RUN"))
    assert "pip install --no-cache-dir -r requirements.txt" in runs
    assert not any("requirements-dev" in rest for kw, rest in dockerfile() if kw in ("RUN", "COPY"))


def test_dockerfile_default_command_is_procfile_web():
    assert not instructions("ENTRYPOINT"), "an ENTRYPOINT would wrap the platforms' process commands"
    (cmd,) = instructions("CMD")
    assert exec_form(cmd) == PROCFILE_ARGV["web"]
    env = " ".join(instructions("ENV"))
    assert re.search(r"\bPORT=8000\b", env)
    assert instructions("EXPOSE") == ["8000"]


def test_dockerfile_healthcheck_asks_healthz_with_python():
    (check,) = instructions("HEALTHCHECK")
    options, _, command = check.partition("CMD ")
    command = exec_form(command)
    assert command[0] == "python" and "curl" not in check
    assert "/healthz" in command[-1]
    compile(command[-1], "<healthcheck>", "exec")


def test_dockerignore_keeps_what_the_image_copies():
    lines = [line.strip() for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    kept = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert {"requirements.txt", "fluxhook", "receiver", "worker", "Procfile"} <= kept


# --------------------------------------------------------------------------------------------
# docker-compose.yml
# --------------------------------------------------------------------------------------------

def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def seconds(value) -> float:
    """A duration as compose and fly write them: 30, "30", "30s", "1m"."""
    if isinstance(value, (int, float)):
        return float(value)
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", str(value).strip())
    assert match, value
    return float(match.group(1)) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[match.group(2)]


def interpolation_default(value: str) -> str | None:
    """The value compose uses when the variable is unset: ${X:-default} -> default; ${X:?..} -> None."""
    match = re.fullmatch(r"\$\{\w+(:?[-?])([^}]*)\}", str(value))
    if not match:
        return str(value)
    return match.group(2) if match.group(1).endswith("-") else None


def test_compose_has_web_worker_redis():
    services = compose()["services"]
    assert {"web", "worker", "redis"} <= set(services)


@pytest.mark.parametrize("name", ["web", "worker"])
def test_compose_runs_the_procfile_commands(name):
    service = compose()["services"][name]
    command = service.get("command")
    if command is None:  # the image's default command
        command = exec_form(instructions("CMD")[0])
    assert argv(command) == PROCFILE_ARGV[name]
    assert "entrypoint" not in service
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / service["build"]["context"]).resolve() == ROOT


@pytest.mark.parametrize("name", ["web", "worker"])
def test_compose_waits_for_graceful_stops(name):
    service = compose()["services"][name]
    assert seconds(service["stop_grace_period"]) >= MIN_GRACE_SECONDS
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"


def test_compose_redis_has_aof_noeviction_and_a_volume():
    document = compose()
    redis = document["services"]["redis"]
    assert str(redis["image"]).startswith("redis:7")
    command = " ".join(argv(redis["command"]))
    assert "--appendonly yes" in command
    assert "--appendfsync everysec" in command
    assert "--maxmemory-policy noeviction" in command
    mounts = dict(reversed(volume.split(":", 1)) for volume in redis["volumes"])
    assert mounts["/data"] in document["volumes"], "Redis's /data must be a named volume"
    assert "healthcheck" in redis


def test_compose_web_and_worker_share_the_image_volume():
    document = compose()
    services = document["services"]
    storage = interpolation_default(services["web"]["environment"]["STORAGE_URL"])
    assert storage.startswith("file:///")
    path = storage[len("file://"):]
    volumes = {}
    for name in ("web", "worker"):
        mounts = dict(reversed(volume.split(":", 1)) for volume in services[name]["volumes"])
        assert path in mounts, f"{name} does not mount the image store {path}"
        volumes[name] = mounts[path]
    assert volumes["web"] == volumes["worker"] and volumes["web"] in document["volumes"]


@pytest.mark.parametrize("name", ["web", "worker"])
def test_compose_passes_every_variable(name):
    """Required ones by name in `environment`; every other one through the env_file, deploy/.env."""
    service = compose()["services"][name]
    environment = service["environment"]
    assert isinstance(environment, dict)
    env_files = [service["env_file"]] if isinstance(service["env_file"], str) else service["env_file"]
    assert [(DEPLOY / f).resolve() for f in env_files] == [(DEPLOY / ".env").resolve()]
    example = env_example_names()
    missing = ALL_VARIABLES - set(environment) - example
    assert not missing, f"neither docker-compose.yml {name} nor deploy/.env.example names {sorted(missing)}"
    for variable in DEPLOY_REQUIRED - {"BFL_WEBHOOK_SECRET"}:
        value = str(environment.get(variable, "${" + variable + ":?}"))
        default = interpolation_default(value)
        assert default is None or default.strip(), f"{variable} must be required (${{{variable}:?...}}) or set"
        if variable not in environment:
            assert variable in example, f"{variable} must be named in deploy/.env.example"
    for variable in SECRETS - {"REDIS_URL"}:
        if variable in environment:
            assert str(environment[variable]).startswith("${" + variable), f"{variable} must come from deploy/.env"
    assert compose()["services"]["web"]["environment"] == compose()["services"]["worker"]["environment"]


def test_compose_has_no_empty_defaults():
    """`${VAR:-}` reaches the container literally under podman-compose 1.0.3 (Debian 12's)."""
    def values(node):
        if isinstance(node, dict):
            for value in node.values():
                yield from values(value)
        elif isinstance(node, list):
            for value in node:
                yield from values(value)
        else:
            yield str(node)

    empty = [value for value in values(compose()) if re.search(r"\$\{\w+:?-\}", value)]
    assert not empty, empty


def env_example_names() -> set[str]:
    """Variables deploy/.env.example sets or shows commented out (`#NAME=`)."""
    return set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", (DEPLOY / ".env.example").read_text(), re.M))


def test_env_example_names_the_compose_requirements():
    example = (DEPLOY / ".env.example").read_text()
    environment = compose()["services"]["web"]["environment"]
    for variable, value in environment.items():
        if interpolation_default(value) is None:
            assert re.search(rf"^{variable}=", example, re.M), f".env.example lacks {variable}"


# --------------------------------------------------------------------------------------------
# app.json (Heroku)
# --------------------------------------------------------------------------------------------

def app_json() -> dict:
    return json.loads((DEPLOY / "app.json").read_text())


def test_app_json_formation_is_the_procfile():
    document = app_json()
    assert set(document["formation"]) == set(PROCFILE_ARGV)
    assert all(entry["quantity"] >= 1 for entry in document["formation"].values())
    assert {"url": "heroku/python"} in document["buildpacks"]


def test_app_json_has_a_persistent_heroku_redis():
    plans = [addon["plan"] if isinstance(addon, dict) else addon for addon in app_json()["addons"]]
    redis = [plan for plan in plans if plan.startswith("heroku-redis:")]
    assert redis, "app.json must add Heroku's Key-Value Store"
    assert not any(plan.endswith(":mini") for plan in redis), "the mini plan has no persistence"


def test_app_json_lists_every_variable_with_a_description():
    env = app_json()["env"]
    # Heroku sets PORT on the web dyno itself; a config var of that name would only get in the way.
    missing = ALL_VARIABLES - set(env) - {"PORT"}
    assert "PORT" not in env
    assert not missing, f"app.json lacks {sorted(missing)}"
    for name, entry in env.items():
        assert isinstance(entry, dict) and entry.get("description"), name
        assert "value" not in entry or name not in SECRETS, f"{name} must not have a committed value"
    for name in ("SECRET_KEY", "API_TOKENS"):
        assert env[name].get("generator") == "secret"
    for name in DEPLOY_REQUIRED - {"REDIS_URL", "BFL_WEBHOOK_SECRET"}:
        entry = env[name]
        assert entry.get("required") or entry.get("generator"), f"app.json must require {name}"


# --------------------------------------------------------------------------------------------
# render.yaml
# --------------------------------------------------------------------------------------------

def render() -> dict:
    return yaml.safe_load((DEPLOY / "render.yaml").read_text())


def render_service(kind: str) -> dict:
    (service,) = [s for s in render()["services"] if s["type"] == kind]
    return service


def render_env(service: dict) -> dict[str, dict]:
    """Variable name -> its entry, the service's own and those of the groups it pulls in."""
    groups = {group["name"]: group for group in render().get("envVarGroups", [])}
    env = {}
    for entry in service.get("envVars", []):
        if "fromGroup" in entry:
            for grouped in groups[entry["fromGroup"]]["envVars"]:
                env[grouped["key"]] = grouped
        else:
            env[entry["key"]] = entry
    return env


@pytest.mark.parametrize("process, kind", [("web", "web"), ("worker", "worker")])
def test_render_runs_the_procfile_commands(process, kind):
    service = render_service(kind)
    assert argv(service["startCommand"]) == PROCFILE_ARGV[process]
    assert service["startCommand"] == procfile()[process]
    assert service["runtime"] == "python"
    assert "requirements.txt" in service["buildCommand"] and "requirements-dev" not in service["buildCommand"]
    assert service["maxShutdownDelaySeconds"] >= MIN_GRACE_SECONDS
    assert service.get("plan") != "free"


def test_render_web_health_check():
    assert render_service("web")["healthCheckPath"] == "/healthz"


def test_render_key_value_is_noeviction_and_wired():
    (store,) = [s for s in render()["services"] if s["type"] in ("keyvalue", "redis")]
    assert store["maxmemoryPolicy"] == "noeviction"
    assert store.get("plan") not in (None, "free"), "only paid Key Value instances persist"
    assert "ipAllowList" in store
    for kind in ("web", "worker"):
        source = render_env(render_service(kind))["REDIS_URL"]["fromService"]
        assert source == {"type": store["type"], "name": store["name"], "property": "connectionString"}


@pytest.mark.parametrize("kind", ["web", "worker"])
def test_render_services_have_every_required_variable(kind):
    env = render_env(render_service(kind))
    missing = DEPLOY_REQUIRED - set(env)
    assert not missing, f"render.yaml {kind} lacks {sorted(missing)}"
    for name in SECRETS:
        assert "value" not in env[name], f"{name} must not have a committed value"


def test_render_secrets_are_generated_once_and_shared():
    web, worker = render_service("web"), render_service("worker")
    web_env, worker_env = render_env(web), render_env(worker)
    for name in ("SECRET_KEY", "API_TOKENS"):
        assert web_env[name].get("generateValue") is True
    for name, entry in web_env.items():
        if entry.get("generateValue") or entry.get("sync") is False:
            # The worker must see the very same value: a copy of the web service's variable.
            assert worker_env[name].get("fromService") == {"type": "web", "name": web["name"], "envVarKey": name}, name


# --------------------------------------------------------------------------------------------
# fly.toml
# --------------------------------------------------------------------------------------------

def fly() -> dict:
    with (DEPLOY / "fly.toml").open("rb") as f:
        return tomllib.load(f)


def test_fly_processes_are_the_procfile():
    processes = fly()["processes"]
    assert set(processes) == set(PROCFILE_ARGV)
    for name, command in processes.items():
        assert argv(command) == PROCFILE_ARGV[name]
        assert command == procfile()[name]


def test_fly_http_service_is_web_only_with_health_check():
    document = fly()
    service = document["http_service"]
    assert service["processes"] == ["web"]
    assert service["internal_port"] == 8000 == int(document["env"]["PORT"])
    assert service.get("auto_stop_machines") in ("off", False), "a stopped web machine misses callbacks"
    assert service.get("min_machines_running", 0) >= 1
    assert any(check.get("path") == "/healthz" for check in service["checks"])
    assert "services" not in document, "no other service may expose the worker"


def test_fly_stops_gracefully():
    document = fly()
    assert seconds(document["kill_timeout"]) >= MIN_GRACE_SECONDS
    assert document["kill_signal"] == "SIGTERM"


def test_fly_builds_deploy_dockerfile():
    build = fly()["build"]
    assert (DEPLOY / build["dockerfile"]).resolve() == (DEPLOY / "Dockerfile").resolve()
    assert (DEPLOY / build["ignorefile"]).is_file()


def fly_secrets_documented() -> set[str]:
    """Variables the README's Fly section sets with `fly secrets set`."""
    text = DEPLOY_README.read_text()
    section = re.search(r"^## Fly\.io\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert section, "deploy/README.md has no '## Fly.io' section"
    joined = re.sub(r"\\\n\s*", " ", section.group(1))
    names = set()
    for line in joined.splitlines():
        command = line.strip()
        if command.startswith("fly secrets set"):
            names |= set(re.findall(r"(?:^|\s)([A-Z][A-Z0-9_]*)=", command))
    return names


def test_fly_has_every_required_variable():
    env = fly()["env"]
    secrets = fly_secrets_documented()
    missing = DEPLOY_REQUIRED - set(env) - secrets
    assert not missing, f"neither fly.toml [env] nor `fly secrets set` in deploy/README.md sets {sorted(missing)}"
    assert not SECRETS & set(env), "secrets belong in `fly secrets set`, not in fly.toml"
    assert SECRETS <= secrets


# --------------------------------------------------------------------------------------------
# deploy/README.md
# --------------------------------------------------------------------------------------------

def readme_sections() -> dict[str, str]:
    text = DEPLOY_README.read_text()
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=False)}


@pytest.mark.parametrize("platform", ["Docker Compose", "Heroku", "Render", "Fly.io"])
def test_readme_gives_numbered_steps_to_a_webhook_url(platform):
    section = readme_sections()[platform]
    steps = re.findall(r"^(\d+)\. ", section, re.M)
    assert len(steps) >= 4 and steps == [str(i) for i in range(1, len(steps) + 1)], steps
    assert "/webhooks/bfl/" in section
    assert "Checking a deployment" in section or "checking-a-deployment" in section


def test_readme_names_the_procfile_commands():
    text = DEPLOY_README.read_text()
    for command in procfile().values():
        assert f"`{command}`" in text


def test_readme_explains_checks_redis_and_workers():
    sections = readme_sections()
    check = sections["Checking a deployment"]
    assert "/readyz" in check and "/healthz" in check
    assert re.search(r"curl -s -X POST \$FH/v1/jobs -H \"Authorization: Bearer \$TOKEN\"", check)
    redis = sections["What Redis needs"]
    assert "appendonly" in redis and "noeviction" in redis
    workers = sections["Workers"]
    for needle in ("SIGTERM", "handed back", "10 s", "16 submissions at once", "kill_timeout",
                   "maxShutdownDelaySeconds", "stop_grace_period", "sweep"):
        assert needle in workers, needle
