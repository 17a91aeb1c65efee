"""Configuration: read once from the environment into a typed, validated object."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import os
import re
from dataclasses import MISSING, dataclass, fields, replace
from functools import cached_property
from typing import Any, Mapping
from urllib.parse import urlsplit

from fluxhook.core.accounts import (
    ACCOUNT_NAME,
    DEFAULT_ACCOUNT,
    KONTEXT_MAX_POOL,
    Account,
    env_prefix,
    parse_names,
    pooled_limits,
)
from fluxhook.core.accounts import DEFAULT_MODEL_LIMITS as DEFAULT_LIMITS
from fluxhook.core.catalog import SHIPPED_CATALOG, Catalog
from fluxhook.core.catalog import load as load_catalog
from fluxhook.core.errors import ConfigError, InvalidRequest
from fluxhook.core.holds import IMAGE_URL_TTL
from fluxhook.core.hosts import HostPattern, parse_host_pattern
from fluxhook.core.models import MODEL
from fluxhook.core.notify_rules import MAX_NOTIFY_URL, Wording, check_form, check_notify_url

DEFAULT_RESULT_HOSTS = "delivery.*.bfl.ai,delivery-*.bfl.ai,bfldeliveryprod.blob.core.windows.net"
# Every https host of BFL's domain one or two labels deep: BFL hands out polling URLs on regional gateways
# (gateway.bfl.ai, api.eu.bfl.ai) whose tasks its global host answers 404 for.
DEFAULT_API_HOSTS = "*.bfl.ai,*.*.bfl.ai"
DEFAULT_MODEL_LIMITS = ",".join(f"{model}={limit}" for model, limit in DEFAULT_LIMITS)
# STORAGE_URL's s3:// form: S3's rules for bucket names and key prefixes.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_ADDRESS = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_PREFIX_PART = re.compile(r"^[A-Za-z0-9!_.*'()-]{1,255}$")
# A SECRET_KEY signs every link and callback token and seals what Redis keeps: a short or well-known one can be
# found offline from one signed link, so it refuses to start. Shorter bearer tokens start with a warning.
MIN_SECRET_LENGTH = 32
MIN_TOKEN_LENGTH = 8
# Values copied from examples and templates instead of generated (compared without case, spaces, '-' and '_').
PLACEHOLDER_SECRETS = frozenset({
    "changeme", "changethis", "changeit", "secret", "secretkey", "mysecretkey", "yoursecretkey", "supersecret",
    "supersecretkey", "password", "devkey", "development", "test", "testkey", "replaceme", "xxx", "todo", "none",
    "null", "default", "insecure", "notsecret", "fluxhook",
})
MAKE_A_SECRET = "make one with: openssl rand -hex 32 (or python3 -c 'import secrets; print(secrets.token_hex(32))')"
# Standard Webhooks: a secret is "whsec_" and the base64 of 24 to 64 random bytes.
NOTIFY_SECRET_PREFIX = "whsec_"
NOTIFY_SECRET_BYTES = (24, 64)
# NOTIFY_URL follows a job's notify_url's rule (notify_rules), in a setting's words.
_NOTIFY_URL_WORDING = Wording(
    malformed="must be an http:// or https:// URL of printable ASCII characters without spaces",
    too_long=f"must be at most {MAX_NOTIFY_URL} characters",
    not_allowed="{reason} (NOTIFY_HOST_ALLOWLIST); an http URL, a port other than 443 or a private address must be "
                "listed as its exact host:port in NOTIFY_HOST_ALLOWLIST",
)
DEFAULT_PORT = 8000
# REDIS_MIN_REPLICAS's default with REDIS_SENTINELS: a Sentinel deployment has a replica by design, and without the
# check a failover, even a planned one, loses what the old primary acknowledged.
SENTINEL_MIN_REPLICAS = 1
# MAX_SPOOL_BYTES's least: room for a few callbacks of 1 MiB (the room kept for them is a quarter) and a body.
MIN_SPOOL_BYTES = 4 * 1024 * 1024
# The largest per-key rates, as a setting or a key's own limit (``lifecycle.steps.key_fields`` takes the same bounds):
# a value past them is a typo (a few zeros too many), refused at start rather than lifting the limit.
MAX_READS_PER_MINUTE = 1_000_000
MAX_ITEMS_PER_MINUTE = 10_000_000
MAX_ITEMS_PER_DAY = 1_000_000_000
# A wake-up guard past a waiter's own longest wait (store/wakes.LONGEST_WAIT) would guard nothing.
MAX_WAKE_GUARD = 300


def parse_model_limits(text: str) -> tuple[tuple[str, int], ...]:
    """``flux-kontext-max=6,flux-3-video=5`` as (model, limit) pairs; ``none`` for no model of its own.

    Raises ValueError saying what is wrong.
    """
    if text.strip().lower() == "none":
        return ()
    limits: dict[str, int] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        model, sep, number = (part.strip() for part in entry.partition("="))
        if not sep or not MODEL.fullmatch(model) or model == "default":
            raise ValueError(f"{entry[:80]!r} is not model=n with a BFL model name such as flux-3-video")
        if not number.isdigit() or not 1 <= int(number) <= 10_000:
            raise ValueError(f"{entry[:80]!r}: the limit must be a whole number from 1 to 10000")
        if model in limits:
            raise ValueError(f"{model} is named twice")
        limits[model] = int(number)
    return tuple(limits.items())


@dataclass(frozen=True)
class Config:
    """Every setting, validated."""

    redis_url: str
    bfl_api_key: str
    secret_key: str
    api_tokens: tuple[str, ...]
    bfl_api_base: str = "https://api.bfl.ai"
    bfl_webhook_secret: str | None = None
    webhook_require_secret: bool = False
    public_base_url: str = f"http://localhost:{DEFAULT_PORT}"
    storage_url: str = "file://./var/images"
    # s3:// storage only: another S3-compatible service than AWS (R2, MinIO, B2...), the region
    # (AWS_REGION, else AWS_DEFAULT_REGION, else boto3's own sources), and how images are served.
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_image_delivery: str = "redirect"
    result_host_allowlist: tuple[HostPattern, ...] = ()
    api_host_allowlist: tuple[HostPattern, ...] = ()
    callback_grace_seconds: int = 45
    bfl_max_active: int = 24
    # BFL_MODEL_LIMITS: (model, limit) pairs, each model a slot pool of its own within bfl_max_active.
    bfl_model_limits: tuple[tuple[str, int], ...] = DEFAULT_LIMITS
    max_image_bytes: int = 52_428_800
    # The largest video (and draft cache) accepted.
    max_video_bytes: int = 2_147_483_648
    job_retention_days: int = 30
    image_url_ttl_seconds: int = IMAGE_URL_TTL
    # Every read of a job within a window of this many seconds gives the same signed links (a cache keeps them);
    # 1: a new link every second.
    image_url_window_seconds: int = 3600
    # Credits fluxhook may spend per UTC day (None: no limit), and how often a worker asks BFL for the balance.
    bfl_daily_credit_limit: float | None = None
    bfl_credits_refresh_seconds: int = 300
    log_level: str = "INFO"
    worker_processes: int = 1
    # The longest a worker's waiter at rest goes without a look at its line (worker/guarding.py): what a wake-up lost
    # to a Redis failover or to a process of an older release costs at most. The look is one command a process per
    # guard, so a shorter one costs more at rest (10 s: 0.1 a second).
    wake_guard_seconds: int = 10
    # Sends paced by storage (core/pacing.py): a send to BFL goes only while the results BFL finished and fluxhook has
    # not stored can be stored, at the rate storage kept over the last minute, within this share of the shortest
    # result URL life (0 < share <= 1; 0 turns pacing off, for a benchmark's baseline only: results then expire when
    # BFL outruns storage). Below the floor's backlog nothing is judged: no rate at a cold start, and a few results per
    # download lane drain long before a URL lapses.
    store_pacing_share: float = 0.5
    store_pacing_floor: int = 32
    # Capacity of each kind of a worker process's work (its bulkheads): submissions to BFL at once for each BFL
    # account, RQ tasks of downloads (with their store and thumbnail) at once, checks (polls) at once for each BFL
    # account (one account's slow answers hold its own senders and checkers only), notification attempts.
    worker_send_concurrency: int = 16
    worker_download_concurrency: int = 4
    worker_check_concurrency: int = 2
    worker_notify_concurrency: int = 8
    # Requests a web process works on at once (gunicorn's thread pool adds room for waiting ones).
    web_threads: int = 4
    redis_tls_verify: bool = True
    # Redis Sentinel: the sentinels' (host, port)s and the master's name; REDIS_URL then gives only the
    # password, database and TLS. Both or neither.
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_sentinel_master: str | None = None
    # Replicas a write must reach before a request that changed something is acknowledged, and the
    # longest one request waits for them. Under Sentinel the default is SENTINEL_MIN_REPLICAS (below).
    redis_min_replicas: int = 0
    redis_wait_ms: int = 500
    # Values being rotated out: still accepted, never used to sign anything new.
    previous_secret_keys: tuple[str, ...] = ()
    previous_webhook_secrets: tuple[str, ...] = ()
    # Notifications to the user's app (see ``notify``): the default URL of every job, the Standard
    # Webhooks secret they are signed with, and the hosts a job's own notify_url may name.
    notify_url: str | None = None
    notify_secret: str | None = None
    notify_host_allowlist: tuple[HostPattern, ...] = ()
    # Request bodies still arriving (receiver/buffering_worker.py): the bytes one web process may hold for them,
    # in memory or spooled to disk, and the rate (bytes a second, over any 10 s) below which one is cut off.
    max_spool_bytes: int = 1_073_741_824
    min_body_rate: int = 65_536
    # Streams (GET /v1/jobs/{id}/events, GET /v1/events) one caller may hold open at once, over every web process.
    max_streams_per_caller: int = 20
    # Reads an app key may make a minute (every request of the key but a submission: a job, an image, a list), over
    # every web process, unless the key sets its own ``reads_per_minute``; a larger page counts more
    # (``lifecycle.steps.key_limits.read_cost``). Admin tokens are not limited.
    reads_per_minute: int = 600
    # Items (jobs and batch items alike) an app key may create, unless the key sets its own: a token bucket of
    # ``items_per_minute`` a minute, and at most ``items_per_day`` a UTC day, so what a key can make Redis hold is
    # bounded by its limits. The minute's bucket holds at least one whole batch of the largest size (``MAX_ITEMS``,
    # 10,000: ``lifecycle.steps.key_limits.items_burst``), so no batch is ever refused for its size alone; 20,000 a
    # minute refills that in half a minute.
    items_per_minute: int = 20_000
    items_per_day: int = 50_000
    # Answers written while their reader reads (a batch's ZIP or JSONL, a file, a video) one caller may hold at once
    # over every web process, and the slowest (bytes a second, over any ANSWER_RATE_WINDOW) such an answer may be read
    # at before it is cut off (receiver/answers.py).
    max_answers_per_caller: int = 4
    min_answer_rate: int = 8192
    # Jobs and batch items one app key may hold queued (not yet sent to BFL), unless the key sets its own
    # ``max_queued``; past it a submission or batch is refused 429 queue_full and nothing is created.
    max_queued_per_key: int = 20_000
    # The largest batch body (JSON or NDJSON) a web process takes; past it 413.
    max_batch_bytes: int = 67_108_864
    # A bearer token that opens /metrics and nothing else (Prometheus's), besides the admin tokens.
    metrics_token: str | None = None
    # The model catalog, with BFL_MODELS_FILE merged over the shipped one.
    catalog: Catalog = SHIPPED_CATALOG
    # BFL_ACCOUNTS and each one's BFL_<NAME>_* settings; empty: the one default account of the BFL_* settings.
    named_accounts: tuple[Account, ...] = ()

    @cached_property
    def accounts(self) -> tuple[Account, ...]:
        """Every BFL account fluxhook sends tasks through: BFL_ACCOUNTS', or the one ``default`` account (whose
        daily limit is BFL_DAILY_CREDIT_LIMIT, the budget's over every account)."""
        return self.named_accounts or (Account(
            name=DEFAULT_ACCOUNT, api_key=self.bfl_api_key, api_base=self.bfl_api_base, max_active=self.bfl_max_active,
            model_limits=self.bfl_model_limits, webhook_secrets=self.webhook_secrets,
            api_host_allowlist=self.api_host_allowlist),)

    @cached_property
    def pooled_limits(self) -> tuple[tuple[str, int], ...]:
        """The models with a slot pool of their own at any account (``accounts.pool_for`` reads them)."""
        return pooled_limits(self.accounts)

    def account(self, name: str | None) -> Account:
        """The account named ``name`` (None, or one no longer configured: the first), for a task it sent."""
        return next((a for a in self.accounts if a.name == name), self.accounts[0])

    @property
    def secret_keys(self) -> tuple[str, ...]:
        """Every accepted ``SECRET_KEY``, oldest first and the current one last (itsdangerous's order)."""
        return (*self.previous_secret_keys, self.secret_key)

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        """Every accepted ``BFL_WEBHOOK_SECRET``, the current one first."""
        return tuple(s for s in (self.bfl_webhook_secret, *self.previous_webhook_secrets) if s)

    def warnings(self) -> list[str]:
        """Settings that are valid but almost certainly wrong, one sentence each (logged at start)."""
        found = []
        if not self.named_accounts and not self.bfl_api_key:
            found.append("BFL_API_KEY is not set: BFL refuses submissions and polls without a key, so only "
                         "callbacks of tracked tasks can complete jobs")
        if any(len(t) < MIN_TOKEN_LENGTH for t in self.api_tokens):
            found.append(f"an API_TOKENS entry is shorter than {MIN_TOKEN_LENGTH} characters: easy to guess "
                         "(use long random strings)")
        if self.metrics_token is not None and len(self.metrics_token) < MIN_TOKEN_LENGTH:
            found.append(f"METRICS_TOKEN is shorter than {MIN_TOKEN_LENGTH} characters: easy to guess "
                         "(use a long random string)")
        # BFL itself (an account with a key at a bfl.ai endpoint, not a simulator) calls back to PUBLIC_BASE_URL.
        at_bfl = [a.name for a in self.accounts if a.api_key and (urlsplit(a.api_base).hostname or "").endswith("bfl.ai")]
        if at_bfl and not _reachable_from_outside(urlsplit(self.public_base_url).hostname or ""):
            through = f" through {', '.join(at_bfl)}" if self.named_accounts else ""
            found.append(f"PUBLIC_BASE_URL is {self.public_base_url}: BFL cannot call back there, so every job"
                         f"{through} waits for the fallback poll (set it to this service's public https address)")
        return found

    def __repr__(self) -> str:  # secrets must never reach a log line through a repr
        return f"Config(redis_url=<set>, bfl_api_base={self.bfl_api_base!r}, public_base_url={self.public_base_url!r})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Config":
        """Read and validate the environment; raise ConfigError listing one line per problem."""
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        port = reader.integer("PORT", DEFAULT_PORT, minimum=1, maximum=65535)
        storage_url = reader.storage_url("STORAGE_URL")
        models = reader.catalog("BFL_MODELS_FILE")
        sentinels = reader.sentinels("REDIS_SENTINELS", "REDIS_SENTINEL_MASTER")
        config = cls(
            redis_url=reader.url("REDIS_URL", required=True, schemes=("redis", "rediss", "unix")),
            bfl_api_key=reader.string("BFL_API_KEY"),
            secret_key=reader.signing_key("SECRET_KEY"),
            api_tokens=reader.tokens("API_TOKENS"),
            bfl_api_base=reader.url("BFL_API_BASE", default=field_default("bfl_api_base"), schemes=("http", "https"),
                                    prefix=True).rstrip("/"),
            bfl_webhook_secret=reader.string("BFL_WEBHOOK_SECRET") or None,
            webhook_require_secret=reader.boolean("WEBHOOK_REQUIRE_SECRET"),
            public_base_url=reader.url(
                "PUBLIC_BASE_URL", default=f"http://localhost:{port}", schemes=("http", "https"), prefix=True
            ).rstrip("/"),
            storage_url=storage_url,
            s3_endpoint_url=reader.url("S3_ENDPOINT_URL", schemes=("http", "https"), prefix=True).rstrip("/") or None,
            s3_region=reader.region(("AWS_REGION", "AWS_DEFAULT_REGION"), check=storage_url.startswith("s3:")),
            s3_image_delivery=reader.choice("S3_IMAGE_DELIVERY", ("redirect", "stream")),
            result_host_allowlist=reader.hosts("RESULT_HOST_ALLOWLIST", DEFAULT_RESULT_HOSTS),
            api_host_allowlist=reader.hosts("API_HOST_ALLOWLIST", DEFAULT_API_HOSTS),
            **_limits(reader, models),
            bfl_credits_refresh_seconds=reader.integer("BFL_CREDITS_REFRESH_SECONDS", minimum=1, maximum=86400),
            log_level=reader.choice("LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR")),
            worker_processes=reader.integer("WORKER_PROCESSES", minimum=1, maximum=32),
            wake_guard_seconds=reader.integer("WAKE_GUARD_SECONDS", minimum=1, maximum=MAX_WAKE_GUARD),
            worker_send_concurrency=reader.capacity("WORKER_SEND_CONCURRENCY"),
            worker_download_concurrency=reader.capacity("WORKER_DOWNLOAD_CONCURRENCY"),
            worker_check_concurrency=reader.capacity("WORKER_CHECK_CONCURRENCY"),
            worker_notify_concurrency=reader.capacity("WORKER_NOTIFY_CONCURRENCY"),
            web_threads=reader.integer("WEB_THREADS", minimum=1, maximum=1000),
            redis_tls_verify=reader.boolean("REDIS_TLS_VERIFY"),
            **sentinels,
            redis_min_replicas=reader.min_replicas("REDIS_MIN_REPLICAS", sentinel=bool(sentinels)),
            redis_wait_ms=reader.integer("REDIS_WAIT_MS", minimum=1, maximum=5_000),
            previous_secret_keys=reader.signing_keys("SECRET_KEY_PREVIOUS"),
            previous_webhook_secrets=reader.secret_list("BFL_WEBHOOK_SECRET_PREVIOUS"),
            **reader.notifications(),
            max_spool_bytes=reader.integer("MAX_SPOOL_BYTES", minimum=MIN_SPOOL_BYTES, maximum=2**40),
            min_body_rate=reader.integer("MIN_BODY_RATE", minimum=1, maximum=2**30),
            max_streams_per_caller=reader.integer("MAX_STREAMS_PER_CALLER", minimum=1, maximum=10_000),
            reads_per_minute=reader.integer("READS_PER_MINUTE", minimum=1, maximum=MAX_READS_PER_MINUTE),
            items_per_minute=reader.integer("ITEMS_PER_MINUTE", minimum=1, maximum=MAX_ITEMS_PER_MINUTE),
            items_per_day=reader.integer("ITEMS_PER_DAY", minimum=1, maximum=MAX_ITEMS_PER_DAY),
            max_answers_per_caller=reader.integer("MAX_ANSWERS_PER_CALLER", minimum=1, maximum=10_000),
            min_answer_rate=reader.integer("MIN_ANSWER_RATE", minimum=1, maximum=2**30),
            max_queued_per_key=reader.integer("MAX_QUEUED_PER_KEY", minimum=1, maximum=10_000_000),
            max_batch_bytes=reader.integer("MAX_BATCH_BYTES", minimum=65_536, maximum=256 * 2**20),
            metrics_token=reader.token("METRICS_TOKEN"),
            catalog=models,
        )
        config = replace(config, named_accounts=reader.accounts(config))
        if reader.problems:
            raise ConfigError(reader.problems)
        return config


def _limits(reader: _Reader, models: Catalog) -> dict[str, Any]:
    """The settings that bound the work: BFL's grace and slots, file sizes, how long jobs and image links last,
    and the day's credits."""
    return dict(
        callback_grace_seconds=reader.integer("CALLBACK_GRACE_SECONDS", minimum=0, maximum=3600),
        bfl_max_active=reader.integer("BFL_MAX_ACTIVE", minimum=1, maximum=10_000),
        bfl_model_limits=reader.model_limits("BFL_MODEL_LIMITS", "BFL_MAX_ACTIVE_KONTEXT_MAX", models.limits()),
        max_image_bytes=reader.integer("MAX_IMAGE_BYTES", minimum=1, maximum=2**31),
        max_video_bytes=reader.integer("MAX_VIDEO_BYTES", minimum=1, maximum=2**40),
        job_retention_days=reader.integer("JOB_RETENTION_DAYS", minimum=1, maximum=3650),
        image_url_ttl_seconds=reader.integer("IMAGE_URL_TTL_SECONDS", minimum=1, maximum=7 * 86400),
        image_url_window_seconds=reader.integer("IMAGE_URL_WINDOW_SECONDS", minimum=1, maximum=7 * 86400),
        bfl_daily_credit_limit=reader.positive_number("BFL_DAILY_CREDIT_LIMIT", maximum=1e9),
        store_pacing_share=reader.share("STORE_PACING_SHARE"),
        store_pacing_floor=reader.integer("STORE_PACING_FLOOR", minimum=1, maximum=1_000_000),
    )


def weak_secret(value: str) -> str | None:
    """Why a signing key is too weak to use (never naming it), or None when it is not."""
    if re.sub(r"[\s_-]", "", value).lower() in PLACEHOLDER_SECRETS:
        return "is a well-known placeholder, not a secret"
    if len(value) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    return None


def _reachable_from_outside(host: str) -> bool:
    """Whether BFL could reach ``host``: not this machine, nor a private, link-local or .local address."""
    host = host.lower().strip("[]")
    if host == "localhost" or host.endswith((".localhost", ".local")):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True  # a name: what it resolves to is the operator's business
    return address.is_global


def field_default(name: str) -> Any:
    """The default of ``Config``'s field ``name``, as written on the field: the one place each default is typed."""
    field = _FIELDS[name]
    if field.default is MISSING:
        raise KeyError(f"Config.{name} has no default")
    return field.default


_FIELDS = {field.name: field for field in fields(Config)}


def _default(name: str) -> Any:
    """The default of the ``Config`` field that the variable ``name`` sets: the field of its name in lower case."""
    return field_default(name.lower())


class _Reader:
    """Reads variables, collecting one problem line per bad variable instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.problems: list[str] = []
        self.failed: set[str] = set()

    def _raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def _fail(self, name: str, why: str) -> None:
        self.problems.append(f"{name}: {why}")
        self.failed.add(name)

    def string(self, name: str, *, required: bool = False) -> str:
        value = self._raw(name)
        if value is None and required:
            self._fail(name, "is required but not set")
        return value or ""

    def secret_list(self, name: str) -> tuple[str, ...]:
        return tuple(v.strip() for v in (self._raw(name) or "").split(",") if v.strip())

    def signing_key(self, name: str) -> str:
        """SECRET_KEY: required, and strong enough that what it signs cannot be forged offline."""
        value = self.string(name, required=True)
        if value and (why := weak_secret(value)):
            self._fail(name, f"{why}; {MAKE_A_SECRET}")
        return value

    def signing_keys(self, name: str) -> tuple[str, ...]:
        """SECRET_KEY_PREVIOUS: a key rotated out still opens what it signed, so it must be as strong as SECRET_KEY."""
        values = self.secret_list(name)
        if any(weak_secret(v) for v in values):
            self._fail(name, f"a key in it is shorter than {MIN_SECRET_LENGTH} characters or a well-known placeholder, "
                             "so what it signed can be forged: drop it (links and callback URLs it signed stop working, "
                             "their jobs are still followed by polling)")
        return values

    def tokens(self, name: str) -> tuple[str, ...]:
        raw = self.string(name, required=True)
        tokens = tuple(t.strip() for t in raw.split(",") if t.strip())
        if raw and not tokens:
            self._fail(name, "must list at least one bearer token")
        if any(not re.fullmatch(r"[\x21-\x7e]+", t) for t in tokens):
            self._fail(name, "every token must be printable characters without spaces")
        return tokens

    def token(self, name: str) -> str | None:
        """One bearer token, printable without spaces; None when unset."""
        value = self._raw(name)
        if value is not None and not re.fullmatch(r"[\x21-\x7e]+", value):
            self._fail(name, "must be printable characters without spaces")
            return None
        return value

    def url(self, name: str, *, default: str = "", required: bool = False, schemes: tuple[str, ...],
            prefix: bool = False) -> str:
        value = self._raw(name)
        if value is None:
            if required:
                self._fail(name, "is required but not set")
            return default
        parts = urlsplit(value)
        if parts.scheme not in schemes or (parts.scheme != "unix" and not parts.netloc):
            self._fail(name, f"must be a URL with scheme {' or '.join(schemes)}")
        elif prefix and (parts.query or parts.fragment or parts.username):
            self._fail(name, "must be a base URL, without user, query or fragment")
        return value

    def boolean(self, name: str, default: bool | None = None) -> bool:
        default = _default(name) if default is None else default
        value = self._raw(name)
        if value is None:
            return default
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        self._fail(name, "must be 1 or 0")
        return default

    def integer(self, name: str, default: int | None = None, *, minimum: int, maximum: int) -> int:
        default = _default(name) if default is None else default
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            self._fail(name, f"must be a whole number, got {value!r}")
            return default
        if not minimum <= number <= maximum:
            self._fail(name, f"must be between {minimum} and {maximum}, got {number}")
            return default
        return number

    def share(self, name: str) -> float:
        """A share between 0 (none: what it shares out is off) and 1."""
        default = _default(name)
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not 0 <= number <= 1:  # NaN fails too
            self._fail(name, f"must be a number from 0 to 1 (0: off), got {value[:40]!r}")
            return default
        return number

    def capacity(self, name: str) -> int:
        """A worker's capacity for one kind of work: 1 to 64 at once."""
        return self.integer(name, minimum=1, maximum=64)

    def min_replicas(self, name: str, *, sentinel: bool) -> int:
        """Replicas an acknowledgement waits for: 0 to 16, by default SENTINEL_MIN_REPLICAS under Sentinel, else 0."""
        default = SENTINEL_MIN_REPLICAS if sentinel else _default(name)
        value = self._raw(name)
        if value is None:
            return default
        if not value.isdigit() or not 0 <= int(value) <= 16:
            self._fail(name, f"must be a whole number of replicas between 0 and 16, got {value[:40]!r} (unset: "
                             f"{SENTINEL_MIN_REPLICAS} with REDIS_SENTINELS, else 0; 0 under Sentinel risks losing "
                             "acknowledged writes in a failover)")
            return default
        return int(value)

    def positive_number(self, name: str, *, maximum: float) -> float | None:
        """A number above 0 (a fraction allowed), or None when unset."""
        value = self._raw(name)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not 0 < number <= maximum:  # NaN fails too
            self._fail(name, f"must be a positive number of credits (at most {maximum:g}), got {value!r}")
            return None
        return number

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        """One of ``choices``, read in any case and given in theirs (all upper or all lower case)."""
        default = _default(name)
        raw = self._raw(name) or default
        value = raw.upper() if choices[0].isupper() else raw.lower()
        if value not in choices:
            self._fail(name, f"must be one of {', '.join(choices)}")
            return default
        return value

    def region(self, names: tuple[str, ...], *, check: bool) -> str | None:
        """The first of ``names`` that is set; checked (as botocore would) only where it is used."""
        for name in names:
            value = self._raw(name)
            if value is None:
                continue
            if check and not re.fullmatch(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?", value):
                self._fail(name, "must be a region name such as us-east-1 (auto for R2)")
                return None
            return value
        return None

    def hosts(self, name: str, default: str, *, allow_empty: bool = False) -> tuple[HostPattern, ...]:
        raw = self._raw(name) or default
        patterns, errors = [], []
        for entry in (e.strip() for e in raw.split(",")):
            if not entry:
                continue
            try:
                patterns.append(parse_host_pattern(entry))
            except ValueError as exc:
                errors.append(str(exc))
        if errors:
            self._fail(name, "; ".join(errors))
        elif not patterns and not allow_empty:
            self._fail(name, "must list at least one host pattern")
        return tuple(patterns)

    def sentinels(self, name: str, master_name: str) -> dict:
        """``host:port,...`` and the master's name: both set or neither."""
        raw, master = self._raw(name), self._raw(master_name)
        found = []
        for entry in (e.strip() for e in (raw or "").split(",")):
            host, sep, port = entry.rpartition(":")
            if not entry:
                continue
            if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                self._fail(name, f"{entry[:80]!r} is not host:port (such as 10.0.0.5:26379)")
                return {}
            found.append((host.strip("[]"), int(port)))
        if found and master is None:
            self._fail(master_name, f"is required with {name}: the name the sentinels monitor the master by")
        elif master is not None and not found:
            self._fail(name, f"is required with {master_name}: the sentinels' host:port, comma-separated")
        elif master is not None and not re.fullmatch(r"[\x21-\x7e]{1,200}", master):
            self._fail(master_name, "must be the master's name as the sentinels know it, without spaces")
        return {"redis_sentinels": tuple(found), "redis_sentinel_master": master} if found and master else {}

    def catalog(self, name: str) -> Catalog:
        """The shipped model catalog with the file ``name`` names merged over it, each problem a line of its own."""
        path = self._raw(name)
        if path is None:
            return SHIPPED_CATALOG
        problems: list[str] = []
        found = load_catalog(path, problems)
        self.problems.extend(problems)
        if problems:
            self.failed.add(name)
        return found

    def model_limits(self, name: str, kontext_alias: str, default: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
        """``model=n`` pairs (``default`` when unset); the deprecated ``kontext_alias`` sets flux-kontext-max's when
        ``name`` is unset."""
        raw = self._raw(name)
        try:
            limits = default if raw is None else parse_model_limits(raw)
        except ValueError as exc:
            self._fail(name, str(exc))
            return default
        if raw is None and self._raw(kontext_alias) is not None:
            kontext = self.integer(kontext_alias, dict(default).get(KONTEXT_MAX_POOL, dict(DEFAULT_LIMITS)[KONTEXT_MAX_POOL]),
                                   minimum=1, maximum=10_000)
            limits = tuple((m, kontext if m == KONTEXT_MAX_POOL else n) for m, n in limits)
        return limits

    def notifications(self) -> dict:
        """NOTIFY_URL, NOTIFY_SECRET and NOTIFY_HOST_ALLOWLIST, checked together."""
        url = self.url("NOTIFY_URL", schemes=("http", "https")) or None
        if url and "NOTIFY_URL" not in self.failed:
            try:
                check_form(url, _NOTIFY_URL_WORDING)
            except InvalidRequest as exc:
                self._fail("NOTIFY_URL", exc.message)
        secret = self.notify_secret("NOTIFY_SECRET", required=url is not None)
        usable = url is not None and "NOTIFY_URL" not in self.failed
        if self._raw("NOTIFY_HOST_ALLOWLIST") is None:
            # Default: NOTIFY_URL's host as a pattern (https on port 443, public addresses only), else none.
            allowlist: tuple[HostPattern, ...] = ()
            if usable and url is not None:
                try:
                    allowlist = (parse_host_pattern(urlsplit(url).hostname or ""),)
                except ValueError:
                    self._fail("NOTIFY_URL", "its host cannot be a host pattern; list its exact host:port "
                                             "in NOTIFY_HOST_ALLOWLIST")
                    usable = False
        else:
            allowlist = self.hosts("NOTIFY_HOST_ALLOWLIST", "", allow_empty=True)
            usable = usable and "NOTIFY_HOST_ALLOWLIST" not in self.failed
        if usable:
            try:
                check_notify_url(url, allowlist, _NOTIFY_URL_WORDING)
            except InvalidRequest as exc:
                self._fail("NOTIFY_URL", exc.message)
        return {"notify_url": url, "notify_secret": secret, "notify_host_allowlist": allowlist}

    def notify_secret(self, name: str, *, required: bool) -> str | None:
        """A Standard Webhooks secret: ``whsec_`` and base64 (padding optional) of 24 to 64 bytes."""
        value = self._raw(name)
        if value is None:
            if required:
                self._fail(name, "is required when NOTIFY_URL is set (whsec_ followed by base64 of 24 to 64 "
                                 "random bytes)")
            return None
        low, high = NOTIFY_SECRET_BYTES
        encoded = value[len(NOTIFY_SECRET_PREFIX):]
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if not value.startswith(NOTIFY_SECRET_PREFIX) or not low <= len(key) <= high:
            self._fail(name, f"must be whsec_ followed by the base64 of {low} to {high} random bytes "
                             "(a Standard Webhooks secret)")
            return None
        return value

    def accounts(self, base: Config) -> tuple[Account, ...]:
        """``BFL_ACCOUNTS`` and each account's ``BFL_<NAME>_*``; an optional setting left out is ``base``'s
        (the ``BFL_*`` one) except the key, endpoint, region and webhook secret, which are the account's own."""
        raw = self._raw("BFL_ACCOUNTS")
        if raw is None:
            return ()
        try:
            names = parse_names(raw)
        except ValueError as exc:
            self._fail("BFL_ACCOUNTS", str(exc))
            return ()
        found = []
        for name in names:
            prefix = env_prefix(name)
            region = self._raw(prefix + "REGION")
            if region is not None and not ACCOUNT_NAME.fullmatch(region.lower()):
                self._fail(prefix + "REGION", "must be a label such as eu or us (lowercase letters, digits, '-')")
            max_active = self.integer(prefix + "MAX_ACTIVE", base.bfl_max_active, minimum=1, maximum=10_000)
            webhook = self.string(prefix + "WEBHOOK_SECRET")
            found.append(Account(
                name=name,
                api_key=self.string(prefix + "API_KEY", required=True),
                api_base=self.url(prefix + "API_BASE", required=True, schemes=("http", "https"), prefix=True).rstrip("/"),
                region=region.lower() if region else None,
                max_active=max_active,
                model_limits=self.model_limits(prefix + "MODEL_LIMITS", prefix + "MAX_ACTIVE_KONTEXT_MAX",
                                               base.bfl_model_limits),
                webhook_secrets=tuple(s for s in (webhook, *self.secret_list(prefix + "WEBHOOK_SECRET_PREVIOUS")) if s),
                daily_credit_limit=self.positive_number(prefix + "DAILY_CREDIT_LIMIT", maximum=1e9),
                api_host_allowlist=(self.hosts(prefix + "API_HOST_ALLOWLIST", "") if self._raw(prefix + "API_HOST_ALLOWLIST")
                                    else base.api_host_allowlist)))
        if len({(a.api_base, a.api_key) for a in found}) != len(found):
            self._fail("BFL_ACCOUNTS", "two accounts have the same endpoint and key: one account named twice")
        return tuple(found)

    def storage_url(self, name: str) -> str:
        value = self._raw(name) or _default(name)
        parts = urlsplit(value)
        if parts.scheme == "s3":
            try:
                parse_s3_url(value)
            except ValueError as exc:
                self._fail(name, str(exc))
        elif parts.scheme != "file" or parts.netloc not in ("", ".", "..", "localhost") or not parts.path \
                or parts.query or parts.fragment:
            self._fail(name, "must be file:///absolute/path, file://./relative/path or s3://bucket/optional/prefix")
        return value


def parse_s3_url(url: str) -> tuple[str, str]:
    """The bucket and prefix of ``s3://bucket/optional/prefix``; ValueError says what is wrong."""
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ValueError("must be s3://bucket/optional/prefix")
    if parts.query or parts.fragment or "@" in parts.netloc or ":" in parts.netloc:
        raise ValueError("must be s3://bucket/optional/prefix, without user, port, query or fragment")
    bucket = parts.netloc
    if (not _BUCKET.fullmatch(bucket) or ".." in bucket or ".-" in bucket or "-." in bucket
            or _IP_ADDRESS.fullmatch(bucket)):
        raise ValueError(f"{bucket!r} is not a valid bucket name "
                         "(3 to 63 lowercase letters, digits, dots and hyphens, not an IP address)")
    prefix = parts.path.strip("/")
    if prefix and (len(prefix) > 512 or any(
            part in (".", "..") or not _PREFIX_PART.fullmatch(part) for part in prefix.split("/"))):
        raise ValueError("the prefix must be /-separated parts of letters, digits and !_.*'()- "
                         "(no empty, '.' or '..' part, at most 512 characters)")
    return bucket, prefix
