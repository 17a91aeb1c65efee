"""The operator commands ``fluxhook sweep``, ``fluxhook migrate`` and ``fluxhook doctor``.

They read the service's own settings (``service_settings``: the running ``make run``'s, with the environment's own
values on top) and talk to its Redis, storage and BFL directly, as the web and worker processes do.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from redis.exceptions import RedisError

from fluxhook.cli.dev_run import dev_run_path, library_settings, read_dev_run
from fluxhook.cli.exits import CLIError, ExitCode
from fluxhook.core.accounts import Account, env_prefix
from fluxhook.core.config import Config
from fluxhook.core.errors import BFLAuthFailed, BFLError, ConfigError
from fluxhook.credits import balance, budget, reports
from fluxhook.credits.figures import balance_words
from fluxhook.lifecycle import key_admin, readiness
from fluxhook.lifecycle.readiness import FAIL, OK, SKIP, WARN, Check, redact_url
from fluxhook.lifecycle.steps import key_limits
from fluxhook.lifecycle.sweep import sweep
from fluxhook.services import build_services, connect_redis
from fluxhook.store import migrations

# Any of these in the environment means it has settings of its own (without any, and without a make run,
# the doctor says where it looked).
OWN_SETTINGS = ("REDIS_URL", "SECRET_KEY", "API_TOKENS")
# What tells one service from another. An environment that sets one of these otherwise than the running make
# run describes another service: that run's file must not fill in what it lacks, or doctor would pass a
# deployment that is missing a setting. Set to the run's own values (a shell that exports REDIS_URL for
# Sentinel, as make run was started), they are that run's, and its file fills in the rest.
IDENTITY = ("REDIS_URL", "REDIS_SENTINELS", "REDIS_SENTINEL_MASTER", "SECRET_KEY", "API_TOKENS")


@dataclass(frozen=True)
class Settings:
    """The service's settings as the operator commands see them, and where they came from."""

    values: dict[str, str]
    dev_run: Path | None = None  # the dev run's file they came from; None: the environment
    from_environment: frozenset[str] = frozenset()  # the names the environment sets (not blank)
    # The running make run's file left unread, and the IDENTITY names the environment sets otherwise.
    passed_over: Path | None = None
    differing: tuple[str, ...] = ()

    def source(self) -> str:
        """Where the settings came from, in words (never a value)."""
        if self.dev_run is not None:
            return f"from {self.dev_run} (the running make run's; the environment's own values win)"
        if self.passed_over is not None:
            return (f"from the environment alone: its {_names(self.differing)} not the running make run's, so that "
                    f"run's settings ({self.passed_over}) are not read; unset {' and '.join(self.differing)} to "
                    "check that run")
        return "from the environment"


def _names(names: tuple[str, ...]) -> str:
    return f"{' and '.join(names)} {'is' if len(names) == 1 else 'are'}"


def service_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """A running ``make run``'s settings with the environment's own values on top; the environment's alone when
    there is none, or when the environment sets one of IDENTITY otherwise than that run (another service)."""
    env = dict(os.environ if environ is None else environ)
    own = {name: value for name, value in env.items() if value.strip()}
    path = dev_run_path(env)
    dev = read_dev_run(path)
    if dev is None:
        return Settings(env, from_environment=frozenset(own))
    differing = tuple(name for name in IDENTITY if name in own and own[name] != dev.get(name))
    if differing:
        return Settings(env, from_environment=frozenset(own), passed_over=path, differing=differing)
    return Settings({**dev, **own}, path, frozenset(own))


def adopt_library_settings(settings: Settings) -> None:
    """Put the settings boto3 reads from the environment (AWS_*) into this process's, unless it has its own: the web
    and worker processes have them there, and the storage check must sign as they do."""
    for name, value in library_settings(settings.values).items():
        os.environ.setdefault(name, value)


def _described(settings: Settings) -> bool:
    """Whether the settings come from somewhere: a dev run's file, or an environment with settings of its own."""
    return settings.dev_run is not None or any((settings.values.get(n) or "").strip() for n in OWN_SETTINGS)


def _nowhere(settings: Settings) -> str:
    return (f"the environment sets none of {', '.join(OWN_SETTINGS)}, and no make run is running: "
            f"its settings would be in {dev_run_path(settings.values)}")


def config_problem(settings: Settings, problem: str) -> str:
    """A problem of the configuration (``SECRET_KEY: is required but not set``), with where the setting was read
    and what to do about it."""
    name = problem.partition(":")[0]
    if settings.dev_run is not None:
        where = (f"the environment sets {name} over the running make run's: fix or unset it"
                 if name in settings.from_environment
                 else f"as the running make run has it ({settings.dev_run}): fix it where that run was started")
    elif settings.passed_over is not None:
        where = (f"the environment's {_names(settings.differing)} not the running make run's, so its settings "
                 f"({settings.passed_over}) are not read: set {name} as the service has it, or unset "
                 f"{' and '.join(settings.differing)} to check that run")
    elif _described(settings):
        where = (f"read from the environment alone, as there is no make run here: set {name} as the service has "
                 "it, or run this command where the service runs")
    else:
        return problem
    return f"{problem} ({where})"


# --- sweep -------------------------------------------------------------------------------------------

SWEEP_WORDS = {"due": "a check queued for each", "deadlines": "jobs ended at their Cancel-After deadline"}


def cmd_sweep(args: argparse.Namespace) -> int:
    config = _config_for("sweep")
    try:
        report = sweep(build_services(config))
    except RedisError as exc:
        raise _unreachable(config, exc) from None
    print(sweep_summary(dataclasses.asdict(report)))
    return ExitCode.OK


def _config_for(name: str) -> Config:
    """The service's own configuration for command ``name``, saying where it was read when from a dev run."""
    settings = service_settings()
    if settings.dev_run or settings.passed_over:
        print(f"fluxhook {name}: settings {settings.source()}", file=sys.stderr)
    adopt_library_settings(settings)
    try:
        return Config.from_env(settings.values)
    except ConfigError as exc:
        problems = [config_problem(settings, problem) for problem in exc.problems]
        hint = "" if _described(settings) else f"\n({_nowhere(settings)})"
        raise CLIError("the configuration is not valid:\n  " + "\n  ".join(problems) + hint) from None


def _unreachable(config: Config, exc: RedisError) -> CLIError:
    return CLIError(f"redis unreachable at {redact_url(config.redis_url)}: {type(exc).__name__}: {exc}",
                    ExitCode.UNAVAILABLE)


def sweep_summary(report: Mapping[str, Any]) -> str:
    """``swept: 2 due (...), 1 deadlines (...)``, and any other count the sweep reports."""
    parts = [f"{value} {name}" + (f" ({SWEEP_WORDS[name]})" if name in SWEEP_WORDS else "")
             for name, value in report.items()]
    return "swept: " + ", ".join(parts)


# --- migrate -----------------------------------------------------------------------------------------

MIGRATED_WORDS = (("lines", "jobs moved from an old line into today's"), ("slots", "slots given their account"),
                  ("holders", "slot holders given their one entry"), ("accounts", "jobs given their task's account"),
                  ("sealed", "values sealed"))


def cmd_migrate(args: argparse.Namespace) -> int:
    """Bring what older releases kept in Redis into today's shape (``store.migrations``), as every worker does
    when it starts, and print what it changed."""
    config = _config_for("migrate")
    try:
        done = migrations.migrate(connect_redis(config), config, again=args.again)
    except RedisError as exc:
        raise _unreachable(config, exc) from None
    print(migrated_summary(done, migrations.SCHEMA_VERSION))
    return ExitCode.OK


def migrated_summary(done: migrations.Migrated, version: int) -> str:
    """``migrated to schema 1: 2 jobs moved from an old line into today's, ...``, or that nothing was to do."""
    if not done.ran:
        return f"nothing to migrate: Redis holds schema {version} already"
    return f"migrated to schema {version}: " + ", ".join(f"{getattr(done, name)} {words}" for name, words in MIGRATED_WORDS)

# --- doctor ------------------------------------------------------------------------------------------

def cmd_doctor(args: argparse.Namespace) -> int:
    """Print one line per check; exit 1 if any failed."""
    failed = False
    settings = service_settings()
    adopt_library_settings(settings)
    for check in run_checks(settings):
        print(check_line(check), flush=True)
        failed = failed or check.failed
    if failed:
        print("doctor: some checks failed", file=sys.stderr)
        return ExitCode.JOB_FAILED
    return ExitCode.OK


def check_line(check: Check) -> str:
    """``ok    redis     redis://127.0.0.1:6379/0: PING 0.2 ms``."""
    return f"{check.state:<4}  {check.name:<8}  {check.detail}"


def run_checks(settings: Settings) -> Iterator[Check]:
    """The doctor's checks, one at a time: where the settings came from, the configuration, then
    ``/readyz``'s checks (Redis, worker, storage), Redis's replicas, the budget, the app keys and BFL."""
    yield Check("settings", OK, settings.source()) if _described(settings) else Check("settings", WARN, _nowhere(settings))
    try:
        config = Config.from_env(settings.values)
    except ConfigError as exc:
        for problem in exc.problems:
            yield Check("config", FAIL, config_problem(settings, problem))
        for name in ("redis", "clock", "worker", "storage", "budget", "keys", "bfl"):
            yield Check(name, SKIP, "needs a valid configuration")
        return
    yield from config_checks(config)

    try:
        svc = build_services(config)
    except Exception as exc:  # noqa: BLE001 (a doctor reports, it does not crash)
        yield Check("services", FAIL, f"cannot set up: {type(exc).__name__}: {exc} (check REDIS_URL and "
                                      "STORAGE_URL, which the web and worker processes set up alike)")
        return
    yield from (_advised(check, config) for check in readiness.check(svc))
    yield readiness.clock(svc)
    yield from replicas_checks(svc)
    yield _budget_check(svc)
    yield from _keys_checks(svc)
    for account in svc.config.accounts:
        yield _bfl_check(svc, account)


def _advised(check: Check, config: Config) -> Check:
    """``/readyz``'s check with what to do when it fails: its Redis line names where it looked, not what to set."""
    if check.name != "redis" or not check.failed:
        return check
    what = ("REDIS_SENTINELS and REDIS_SENTINEL_MASTER (the sentinels and the master's name)" if config.redis_sentinels
            else "REDIS_URL")
    return dataclasses.replace(check, detail=f"{check.detail}: is Redis running there? check {what}, as the web and "
                                             "worker processes have it")


def config_checks(config) -> list[Check]:
    """A valid configuration, each BFL account's endpoint, and what it warns about (a PUBLIC_BASE_URL that BFL cannot
    call back to, judged by every account's endpoint)."""
    bfl = (f"BFL_ACCOUNTS={','.join(a.name for a in config.named_accounts)}: "
           + "; ".join(f"{a.name} at {a.api_base}" for a in config.named_accounts) if config.named_accounts
           else f"BFL_API_BASE={config.bfl_api_base}")
    checks = [Check("config", OK, f"valid ({bfl}, STORAGE_URL={config.storage_url}, "
                                  f"PUBLIC_BASE_URL={config.public_base_url})")]
    checks += [Check("config", WARN, warning) for warning in config.warnings()]
    return checks


def replicas_checks(svc) -> list[Check]:
    """Under Sentinel, or with REDIS_MIN_REPLICAS set: what an acknowledgement waits for, the replicas the primary has
    now, and what REDIS_MIN_REPLICAS=0 under Sentinel risks."""
    config = svc.config
    wanted = config.redis_min_replicas
    if not config.redis_sentinels and not wanted:
        return []
    try:
        connected = int(svc.redis.info("replication").get("connected_slaves", 0))
    except RedisError:
        return [Check("replicas", SKIP, "needs Redis")]
    has = f"the primary has {connected} replica{'' if connected == 1 else 's'} connected"
    if not wanted:
        return [Check("replicas", WARN, f"REDIS_MIN_REPLICAS=0 under Sentinel ({has}): a failover, even a planned "
                                        "SENTINEL FAILOVER, loses what the old primary acknowledged before a replica "
                                        "had it (jobs answered 202, callbacks, key changes); unset it (1 with "
                                        "REDIS_SENTINELS) unless staying writable without a replica matters more")]
    if connected < wanted:
        return [Check("replicas", FAIL, f"REDIS_MIN_REPLICAS={wanted} but {has}: submissions, callbacks and key "
                                        "changes answer 503 until enough replicas are back")]
    checks = [Check("replicas", OK, f"acknowledgements wait for {wanted} replica{'' if wanted == 1 else 's'} "
                                    f"(REDIS_MIN_REPLICAS={wanted}, at most REDIS_WAIT_MS={config.redis_wait_ms}); "
                                    f"{has}")]
    if config.redis_sentinels and connected <= wanted:
        checks.append(Check("replicas", WARN, f"{has}, no spare: writes stop while one is away, and a planned "
                                              "SENTINEL FAILOVER holds them about 12 s, until the old primary "
                                              "rejoins as a replica; run one replica more than REDIS_MIN_REPLICAS "
                                              "(docs/operating.md, \"Redis that fails over\")"))
    return checks + _resync_delay_checks(svc)


def _resync_delay_checks(svc) -> list[Check]:
    """Redis 7 syncs a replica from scratch without touching disk, after repl-diskless-sync-delay (5 s by default):
    a planned failover makes the other replica resync so, and holds writes that long. A managed Redis may refuse
    CONFIG: nothing to say then."""
    try:
        config = svc.redis.config_get("repl-diskless-sync*")
    except RedisError:
        return []
    delay = int(config.get("repl-diskless-sync-delay", 0) or 0)
    if config.get("repl-diskless-sync") != "yes" or delay <= 0:
        return []
    return [Check("replicas", WARN, f"repl-diskless-sync-delay is {delay} s on the primary: after a planned failover "
                                    "a replica's resync, and the writes waiting for it, start that much later; set "
                                    "it to 0 on every node (docs/operating.md, \"Redis that fails over\")")]


def _budget_check(svc) -> Check:
    """Today's spend against BFL_DAILY_CREDIT_LIMIT (each account's balance is on its ``bfl`` line)."""
    now = time.time()
    try:
        spent = reports.spent_today(svc, now)
        now_standing = budget.standing(svc, now)
        refused, text = budget.summary(spent, svc.store.usage.reserved(now), svc.config.bfl_daily_credit_limit,
                                       refused=now_standing is not None and not now_standing.admitted)
    except RedisError:
        return Check("budget", SKIP, "needs Redis")
    return Check("budget", WARN if refused else OK, text)


def _keys_checks(svc) -> list[Check]:
    """The app keys near their limits (credits, max_active, expiry), one line each; else how many there are."""
    now = time.time()
    try:
        keys = key_admin.described(svc, svc.store.app_keys.all(), now)
    except RedisError:
        return [Check("keys", SKIP, "needs Redis")]
    near = [(key, key_limits.near_limits(key, now)) for key in keys]
    warnings = [Check("keys", WARN, f"{key['name']} ({key['id']}): {'; '.join(what)}") for key, what in near if what]
    if warnings:
        return warnings
    live = sum(1 for key in keys if not key["revoked_at"])
    return [Check("keys", OK, f"{live} app keys in use, none near its limits" if live else "no app keys")]


def _bfl_check(svc, account: Account) -> Check:
    """One BFL account answers and has credits (the check is ``bfl``, or ``bfl <name>`` with several accounts). The
    balance read is kept as the account's reading, as a worker's is: every view of it shows this one from now on."""
    base, name = account.api_base, "bfl" if not svc.config.named_accounts else f"bfl {account.name}"
    prefix = env_prefix(account.name) if svc.config.named_accounts else "BFL_"
    try:
        reading = balance.read(svc, account)
    except BFLAuthFailed as exc:
        return Check(name, FAIL, f"{base}: {exc.message}: check {prefix}API_KEY (the account's key at that endpoint)")
    except BFLError as exc:
        return Check(name, FAIL, f"{base}: {exc.message}: check {prefix}API_BASE and that this machine reaches it")
    except Exception as exc:  # noqa: BLE001
        return Check(name, FAIL, f"{base}: {type(exc).__name__}: {exc}")
    said = balance_words(reading.credits, reading.at, time.time())
    try:
        balance.keep(svc, account, reading)
    except RedisError:
        said += " (not kept: Redis is unreachable, see the redis line)"
    if reading.credits <= 0:
        return Check(name, FAIL, f"{base} answers, but no credits are left ({said}): "
                                 "submissions fail with insufficient_credits; top up the account at BFL")
    return Check(name, OK, f"{base} answers; balance {said}")

