"""Redis: every key fluxhook keeps (``keys``), every script that changes them (``lua/``), and the
classes that own them. Nothing outside this package builds a key or runs a command on fluxhook's keys."""

from __future__ import annotations

from typing import NamedTuple, cast

from redis import Redis

from fluxhook.core import job as st
from fluxhook.core.accounts import pools
from fluxhook.core.config import Config
from fluxhook.core.signing import Sealer
from fluxhook.store.app_keys import AppKeys
from fluxhook.store.batches import Batches
from fluxhook.store.check_line import CheckLine
from fluxhook.store.cooldowns import Cooldowns
from fluxhook.store.deliveries import Deliveries
from fluxhook.store.effects import Effects, Tallies
from fluxhook.store.end_users import EndUsers
from fluxhook.store.idempotency import IdempotencyStore
from fluxhook.store.job_changes import JobChanges
from fluxhook.store.jobs import JobStore, Locks
from fluxhook.store.kept_callbacks import KeptCallbacks
from fluxhook.store.key_counters import KeyCounters
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.pacing import Pacer
from fluxhook.store.prices import PriceChecks
from fluxhook.store.replication import Replication
from fluxhook.store.sessions import SignedOutSessions
from fluxhook.store.slots import Slots
from fluxhook.store.streams import StreamLeases
from fluxhook.store.timeline import TimelineStore
from fluxhook.store.usage import UsageStore
from fluxhook.store.variants import VariantRecords
from fluxhook.store.watching import Watching
from fluxhook.store.work_lines import WorkLines


class Snapshot(NamedTuple):
    """How many jobs are where, at one moment."""

    by_status: dict[str, int]
    in_flight: dict[str, int]
    waiting: dict[str, int]
    due: int


class SweepWork(NamedTuple):
    """What a sweep has to do now: whether any job is due, any deadline passed, any canceled batch's items are still to
    be ended, any batch's making stopped."""

    jobs: bool
    deadlines: bool
    canceling: bool = False
    unmade: bool = False
    # Results BFL finished that fluxhook has not stored yet: what sends are paced by (``Pacer``); None when this sweep
    # did not look (``Pacer.looks``).
    ready: int | None = None
    # Whether the deadlines' and batches' indexes may hold something (``Store.sweep_work``'s ``rare``).
    rare: bool = True


class Store:
    """Everything fluxhook keeps in Redis, on one connection."""

    def __init__(self, connection: Redis, config: Config, ttl: int | None = None, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys
        self.pools = pools(config.pooled_limits)
        sealer = Sealer(config.secret_keys)
        self.tallies = Tallies(connection, keys)
        accounts = tuple(account.name for account in config.accounts)
        self.jobs = JobStore(connection, ttl=ttl, keys=keys, pools=self.pools, accounts=accounts, sealer=sealer,
                             tallies=self.tallies)
        self.slots = Slots(connection, config, keys=keys)
        self.cooldowns = Cooldowns(connection, keys=keys)
        self.timeline = TimelineStore(connection, keys=keys)
        self.effects = Effects(connection, keys, self.jobs.timeline_ttl, self.tallies.add)
        self.locks = Locks(connection)
        self.kept = KeptCallbacks(connection, sealer, keys=keys)
        self.deliveries = Deliveries(connection, keys=keys)
        self.job_changes = JobChanges(connection, keys=keys)
        self.streams = StreamLeases(connection, keys=keys)
        self.answers = StreamLeases(connection, keys=keys, kind="answers")
        self.idempotency = IdempotencyStore(connection, keys=keys)
        self.usage = UsageStore(connection, keys=keys, tallies=self.tallies)
        self.app_keys = AppKeys(connection, self.slots, keys=keys)
        self.key_counters = KeyCounters(connection, self.pools, keys=keys)
        self.end_users = EndUsers(connection, keys=keys)
        self.signed_out = SignedOutSessions(connection, keys=keys)
        self.prices = PriceChecks(connection, keys=keys)
        self.work = WorkLines(connection, keys=keys)
        self.checks = CheckLine(connection, keys=keys, accounts=accounts)
        self.watching = Watching(connection, keys=keys)
        self.batches = Batches(connection, ttl=ttl, keys=keys)
        self.variants = VariantRecords(connection, ttl=ttl, keys=keys)
        self.pacer = Pacer(connection, keys=keys)
        self.replication = Replication(connection, config.redis_min_replicas, config.redis_wait_ms, keys=keys)

    def snapshot(self, now: float) -> Snapshot:
        """Jobs by status, slots held and jobs waiting by pool, and jobs due for a check by ``now``: one round trip."""
        pipe = self.connection.pipeline(transaction=False)
        for name in st.STATUSES:
            pipe.zcard(self.keys.status(name))
        for pool in self.pools:
            pipe.zcard(self.keys.line(pool))
        for key in self.jobs.slot_keys:
            pipe.zcard(key)
        pipe.zcount(self.keys.due, "-inf", now)
        values = [int(v) for v in pipe.execute()]
        by_status, rest = values[:len(st.STATUSES)], values[len(st.STATUSES):-1]
        waiting, held = rest[:len(self.pools)], rest[len(self.pools):]
        in_flight = dict.fromkeys(self.pools, 0)
        for i, n in enumerate(held):
            in_flight[self.pools[i % len(self.pools)]] += n
        return Snapshot(by_status=dict(zip(st.STATUSES, by_status, strict=False)), in_flight=in_flight,
                        waiting=dict(zip(self.pools, waiting, strict=False)), due=values[-1])

    def sweep_work(self, now: float, rare: bool = True) -> SweepWork:
        """What a sweep at ``now`` has to do (``SweepWork``), in one round trip: a sweep that finds nothing to do
        costs that round trip alone, not a script for each of its parts. The backlog sends are paced by is read in
        it when the pacer looks (``Pacer.looks``). ``rare``: whether the deadlines and batches, which most jobs never
        put in their indexes, may hold something (``sweep_firsts``); if not, one EXISTS of theirs stands for their
        three counts, and they are counted in a second trip only once it finds something."""
        pipe = self.connection.pipeline(transaction=False)
        for index in self.sweep_keys if rare else self.sweep_keys[:1]:
            pipe.zcount(index, "-inf", now)
        if not rare:
            pipe.exists(*self.sweep_keys[1:])
        looks = self.pacer.looks(now)
        if looks:
            self.pacer.waiting(pipe)
        found = pipe.execute()
        counts = found[:4] if rare else [found[0], 0, 0, 0]
        if not rare and found[1]:
            pipe = self.connection.pipeline(transaction=False)
            for index in self.sweep_keys[1:]:
                pipe.zcount(index, "-inf", now)
            counts = [found[0], *pipe.execute()]
        jobs, deadlines, canceling, unmade = (int(n) > 0 for n in counts)
        return SweepWork(jobs=jobs, deadlines=deadlines, canceling=canceling, unmade=unmade,
                         ready=int(found[-1]) if looks else None, rare=rare or bool(found[1]))

    def sweep_firsts(self) -> tuple[float | None, ...]:
        """The first due time in each index ``sweep_work`` reads (``sweep_keys``' order; None: it holds nothing), in
        one round trip: when a sweep next has anything to do. What a sweeper at rest costs a look."""
        pipe = self.connection.pipeline(transaction=False)
        for index in self.sweep_keys:
            pipe.zrange(index, 0, 0, withscores=True)
        return tuple(found[0][1] if found else None for found in pipe.execute())

    @property
    def sweep_keys(self) -> tuple[str, ...]:
        """The indexes ``sweep_work`` reads: what a sweeper at rest watches (``store.wakes.Watched``)."""
        return self.keys.sweep_indexes

    def metrics_fields(self) -> dict[bytes, bytes]:
        """Every recorded metric field and its value (see ``fluxhook.metrics``), this process's tally written first."""
        self.tallies.flush()
        return cast(dict[bytes, bytes], self.connection.hgetall(self.keys.metrics))  # never decoded: bytes
