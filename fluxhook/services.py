"""The long-lived parts a process needs, built once from the configuration."""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.retry import Retry
from redis.sentinel import Sentinel
from rq import Queue

from fluxhook.bfl.client import BFLClient
from fluxhook.core.config import Config
from fluxhook.core.errors import BFLAuthFailed
from fluxhook.core.holds import DAY, PAST_RETENTION_DAYS
from fluxhook.media.storage import Storage, storage_from_url
from fluxhook.net.http_client import HTTPClient
from fluxhook.store import Store
from fluxhook.store.jobs import JobStore
from fluxhook.store.queues import task_queue
from fluxhook.store.slots import Slots


@dataclass
class Services:
    """Configuration, Redis and what fluxhook keeps there, queues, storage, the BFL client, of one process."""

    config: Config
    redis: Redis
    store: Store
    queue: Queue
    storage: Storage
    http: HTTPClient
    # One BFL client per account, by name.
    bfl_clients: dict[str, BFLClient]

    @property
    def jobs(self) -> JobStore:
        return self.store.jobs

    def bfl(self, account: str | None) -> BFLClient:
        """The BFL client of the account named ``account``, the one that sent the task (every task names its
        account: ``store.migrations`` gave one to those of older releases). ``BFLAuthFailed`` for an account no
        longer configured: its tasks never go through another's key."""
        if account not in self.bfl_clients:
            raise BFLAuthFailed(f"the task's BFL account {account!r} is no longer configured (BFL_ACCOUNTS): "
                                "configure it again to reach its tasks")
        return self.bfl_clients[account]

    @property
    def slots(self) -> Slots:
        return self.store.slots


def connect_redis(config: Config) -> Redis:
    """The process's one Redis client: timeouts, health checks, retries; through Sentinel when configured.

    Retried: a refused or cut connection, and a write refused by a primary demoted to replica
    (``READONLY``: a managed Redis whose address moved, or a Sentinel master that lost its role); the
    retry reconnects, asking the sentinels again. Not after a timeout (redis-py's default): the command
    may have run, and our scripts are not idempotent.
    """
    retry = Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 3,
                  supported_errors=(RedisConnectionError, ReadOnlyError))
    options = dict(socket_connect_timeout=5, socket_timeout=10, health_check_interval=30, retry=retry)
    tls = config.redis_url.startswith("rediss://")
    if tls and not config.redis_tls_verify:
        # Heroku's Key-Value Store serves TLS with a self-signed certificate.
        options["ssl_cert_reqs"] = "none"
    if not config.redis_sentinels:
        return Redis.from_url(config.redis_url, **options)
    # REDIS_URL's credentials and database, at whatever address the sentinels name as master.
    given = parse_url(config.redis_url)
    for address_only in ("host", "port", "path", "connection_class"):
        given.pop(address_only, None)
    sentinels = Sentinel(list(config.redis_sentinels),
                         sentinel_kwargs=dict(socket_connect_timeout=1, socket_timeout=1))
    return sentinels.master_for(config.redis_sentinel_master, redis_class=Redis, ssl=tls, **given, **options)


def build_services(config: Config) -> Services:
    """Connect everything ``config`` describes (Redis is contacted lazily, on first use)."""
    redis = connect_redis(config)
    http = HTTPClient()
    return Services(
        config=config,
        redis=redis,
        store=Store(redis, config, ttl=(config.job_retention_days + PAST_RETENTION_DAYS) * DAY),
        queue=task_queue(redis),
        storage=storage_from_url(config.storage_url, endpoint_url=config.s3_endpoint_url, region=config.s3_region),
        http=http,
        bfl_clients={account.name: BFLClient(config, http, account=account) for account in config.accounts},
    )
