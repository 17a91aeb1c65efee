"""Batches (``core/batch.py``): a batch's record, its counts and its indexes; its items are jobs like any other.

A batch is recorded with its counts (every item ``queued``) before its first item is made, so each item's moves find
its counts there (``lua/batch_counts.lua``, run by the job's own steps). Its items are made in pipelines of
``ITEMS_PER_TRIP`` (``Slots.join_all``): a 10,000-item batch costs a job's own commands per item, in 1/500 of the
round trips.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator, Sequence

from redis import Redis
from redis.typing import EncodableT, FieldT

from fluxhook.core import job as st
from fluxhook.core.batch import Batch, is_batch_id
from fluxhook.store.batch_turns import BatchTurns
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.owners import owner_of
from fluxhook.store.scripts import LuaScript, decode_hash, text

# The counts' fields of one batch that a read asks for (``lua/batch_counts.lua``).
_COUNTED = (*st.STATUSES, "total", "cost", "ended_at", "sent")
# A batch's items read this many at a time (its results, its cancel).
ITEMS_PER_READ = 500


class Batches:
    """Every batch's record, counts and indexes."""

    def __init__(self, connection: Redis, ttl: int | None = None, keys: Keys = KEYS):
        self.connection = connection
        self.ttl = ttl
        self.keys = keys
        self._claim = LuaScript(connection, "claim_due")
        self.turns = BatchTurns(connection, keys)
        self._cut = LuaScript(connection, "batch_cut")
        self._prune = LuaScript(connection, "batch_prune")
        self._sweep_index_add = LuaScript(connection, "sweep_index_add")

    def create(self, batch: Batch, *, making_until: float) -> None:
        """Record a new batch, every item counted ``queued``, in one MULTI (its items are made after it); its making
        counts as stopped at ``making_until`` unless it goes on (``making_went_on``) or ends (``made``)."""
        k, counts = self.keys, self.keys.batch_counts
        record: dict[FieldT, EncodableT] = {
            "id": batch.id, "model": batch.model, "total": batch.total, "created_at": repr(batch.created_at),
            "key_id": batch.key_id or "", "metadata": json.dumps(batch.metadata, separators=(",", ":")),
            "notify_url": batch.notify_url or "", "notify_events": ",".join(batch.notify_events)}
        pipe = self.connection.pipeline(transaction=True)
        pipe.hset(k.batch(batch.id), mapping=record)
        if self.ttl:
            pipe.expire(k.batch(batch.id), self.ttl)
        fields: dict[FieldT, EncodableT] = {f"{batch.id}|total": batch.total, f"{batch.id}|{st.QUEUED}": batch.total}
        if batch.notify_url:
            fields[f"{batch.id}|notify"] = 1
        pipe.hset(counts, mapping=fields)
        pipe.zadd(k.owner_batches(owner_of(batch.key_id)), {batch.id: 0})
        pipe.zadd(k.all_batches, {batch.id: 0})
        self._sweep_index_add([k.batches_unmade, k.sweep_added], [repr(making_until), batch.id], client=pipe)
        pipe.execute()

    def making_went_on(self, token: str, batch_id: str | None, now: float, lease: float) -> bool:
        """The request ``token`` (its turn's member, ``turns``) goes on making batch ``batch_id`` (None: its items are
        checked, no batch recorded yet): its turn and the batch's making count as stopped ``lease`` s from ``now``.
        False if the batch was cut meanwhile (``cut_short``). A turn that lapsed (the whole process stalled past
        ``lease``) and went to another request is not taken back: the two make their batches side by side, nothing
        lost."""
        pipe = self.connection.pipeline(transaction=True)
        pipe.zadd(self.keys.batches_making, {token: int((now + lease) * 1000)}, xx=True)
        pipe.pexpire(self.keys.batches_making, int(lease * 1000))  # no other turn ends later than this one now does
        if batch_id is None:
            pipe.execute()
            return True
        pipe.zscore(self.keys.batches_unmade, batch_id)
        pipe.zadd(self.keys.batches_unmade, {batch_id: now + lease}, xx=True)
        return pipe.execute()[2] is not None

    def making(self, batch_id: str) -> bool:
        """Whether the batch's items are still being made: False once it was cut (``cut_short``) or made."""
        return self.connection.zscore(self.keys.batches_unmade, batch_id) is not None

    def made(self, batch_id: str) -> bool:
        """Its last item is made; False if it was cut meanwhile."""
        return bool(self.connection.zrem(self.keys.batches_unmade, batch_id))

    def claim_unmade(self, now: float, limit: int, claim: float) -> builtins.list[str]:
        """Take up to ``limit`` batches whose making stopped by ``now``, as ``claim_canceling`` takes its own: each is
        scored ``claim``, which ``cut_short`` checks."""
        return [text(i) for i in self._claim([self.keys.batches_unmade], [repr(now), limit, repr(claim)])]

    def cut_short(self, batch_id: str, now: float, claimed: float | None = None) -> tuple[int, int] | None:
        """The batch holds the items made and no more, and is canceled (``lua/batch_cut.lua``): its items made and
        asked for. With the sweep's ``claimed`` score, None (and nothing changed) if its making went on since."""
        k = self.keys
        cut = self._cut([k.batch(batch_id), k.batch_jobs(batch_id), k.batch_counts, k.batches_unmade,
                         k.batches_canceling, k.outbox, k.notify_added, k.sweep_added],
                        [batch_id, repr(now), "" if claimed is None else repr(claimed)])
        return None if cut is None else (int(cut[0]), int(cut[1]))

    def prune_unsent(self, batch_id: str, model: str, key_id: str | None, job_ids: Sequence[str], *,
                     by_cancel: bool) -> int:
        """Drop the records, timelines and indexes of those of ``job_ids`` that are the batch's items ended
        ``aborted`` without being sent, each kept only as its batch's count and two bits at its index
        (``lua/batch_prune.lua``); ``by_cancel``: their batch's cancel ended them (those whose notifications were
        asked for go too), else their deadline. How many went."""
        if not job_ids:
            return 0
        k = self.keys
        keys = [k.batch(batch_id), k.batch_jobs(batch_id), k.batch_unsent(batch_id), k.all_jobs,
                k.status(st.ABORTED), k.due, k.deadlines, k.outbox, k.routes, k.model_jobs(model),
                k.key_jobs(key_id) if key_id else k.all_jobs]
        for job_id in job_ids:
            keys += [k.job(job_id), k.timeline(job_id)]
        return int(self._prune(keys, [batch_id, "1" if by_cancel else "0", *job_ids]))

    def unsent(self, batch_id: str) -> dict[int, bool]:
        """The indexes of the batch's items that ended unsent and were pruned (``prune_unsent``), each True when its
        batch's cancel ended it (else its deadline). One read of at most two bits an item."""
        bits = bytes(self.connection.get(self.keys.batch_unsent(batch_id)) or b"")  # type: ignore[arg-type]
        found: dict[int, bool] = {}
        for byte_at, byte in enumerate(bits):
            for bit in range(0, 8, 2):
                if byte & (0x80 >> bit):
                    found[(byte_at * 8 + bit) // 2] = bool(byte & (0x80 >> (bit + 1)))
        return found

    def unsent_at(self, batch_id: str, index: int) -> bool | None:
        """Whether the batch's ``index``-th item ended unsent and was pruned (``prune_unsent``): True when its batch's
        cancel ended it, False its deadline; None when it was not pruned."""
        pipe = self.connection.pipeline(transaction=False)
        pipe.getbit(self.keys.batch_unsent(batch_id), 2 * index)
        pipe.getbit(self.keys.batch_unsent(batch_id), 2 * index + 1)
        pruned, by_cancel = pipe.execute()
        return bool(by_cancel) if pruned else None

    def get(self, batch_id: str) -> Batch | None:
        """The batch with this id, its counts as they are now; None if there is none. One round trip."""
        return self.get_many([batch_id])[0]

    def get_many(self, batch_ids: builtins.list[str]) -> builtins.list[Batch | None]:
        """The batches with these ids as ``get`` reads each, in their order, in one round trip."""
        wanted = [batch_id for batch_id in batch_ids if is_batch_id(batch_id)]
        pipe = self.connection.pipeline(transaction=False)
        for batch_id in wanted:
            pipe.hgetall(self.keys.batch(batch_id))
            pipe.hmget(self.keys.batch_counts, [f"{batch_id}|{name}" for name in _COUNTED])
        replies = pipe.execute() if wanted else []
        found = {batch_id: _batch(decode_hash(record), dict(zip(_COUNTED, counted, strict=True)))
                 for batch_id, record, counted in zip(wanted, replies[::2], replies[1::2], strict=True) if record}
        return [found.get(batch_id) for batch_id in batch_ids]

    def ttl_ms(self, batch_id: str) -> int | None:
        """How long the batch's record still lives, in milliseconds (None: for good): its message lives as long."""
        ttl = int(self.connection.pttl(self.keys.batch(batch_id)))
        return ttl if ttl > 0 else None

    def cancel(self, batch_id: str, now: float) -> bool:
        """Record the batch's cancel, its items to be ended from the first (``claim_canceling``); False if it was
        canceled before."""
        if not self.connection.hsetnx(self.keys.batch(batch_id), "canceled_at", repr(now)):
            return False
        # The sweep ends what this request's own pass does not: a sweeper at rest is woken for it.
        self._sweep_index_add([self.keys.batches_canceling, self.keys.sweep_added], [repr(now), batch_id])
        return True

    def canceled(self, batch_id: str) -> bool:
        """Whether the batch was canceled (its items not yet sent are never sent)."""
        return bool(self.connection.hexists(self.keys.batch(batch_id), "canceled_at"))

    def claim_canceling(self, now: float, limit: int, claim: float) -> builtins.list[str]:
        """Take up to ``limit`` canceled batches whose items are still to be ended, marking each with ``claim`` (a
        future time): two sweeps never take the same one, and one whose taker died comes due again then."""
        return [text(i) for i in self._claim([self.keys.batches_canceling], [repr(now), limit, repr(claim)])]

    def cancel_cursor(self, batch_id: str) -> str | None:
        """The last item whose end its cancel has seen to (None: none yet)."""
        cursor = self.connection.hget(self.keys.batch(batch_id), "cancel_cursor")
        return text(cursor) if cursor else None

    def cancel_went_on(self, batch_id: str, cursor: str | None, *, done: bool, again_at: float) -> None:
        """Note how far the batch's cancel has gone (``cursor``: None starts it over); ``done``: every item has
        ended, so no sweep takes it again; else one does at ``again_at``."""
        pipe = self.connection.pipeline(transaction=True)
        if cursor is None:
            pipe.hdel(self.keys.batch(batch_id), "cancel_cursor")
        else:
            pipe.hset(self.keys.batch(batch_id), "cancel_cursor", cursor)
        if done:
            pipe.zrem(self.keys.batches_canceling, batch_id)
        else:
            self._sweep_index_add([self.keys.batches_canceling, self.keys.sweep_added], [repr(again_at), batch_id],
                                  client=pipe)
        pipe.execute()

    def item_ids_after(self, batch_id: str, cursor: str | None, count: int) -> builtins.list[str]:
        """Up to ``count`` of the batch's items' job ids after the job id ``cursor`` (None: from the first)."""
        return [text(i) for i in self.connection.zrangebylex(self.keys.batch_jobs(batch_id),
                                                             f"({cursor}" if cursor else "-", "+", start=0, num=count)]

    def list(self, key_id: str | None, *, every_owner: bool, limit: int,
             cursor: str | None = None) -> tuple[builtins.list[Batch], str | None]:
        """Batches newest first, ``limit`` at a time after ``cursor`` (the last id the page before read): every batch
        with ``every_owner``, else the owner of ``key_id``'s (None: the admin tokens')."""
        index = self.keys.all_batches if every_owner else self.keys.owner_batches(owner_of(key_id))
        ids = [text(i) for i in self.connection.zrevrangebylex(index, f"({cursor}" if cursor else "+", "-",
                                                                 start=0, num=limit + 1)]
        page = ids[:limit]
        found = [batch for batch in self.get_many(page) if batch is not None]
        return found, (page[-1] if len(ids) > limit and page else None)

    def item_ids(self, batch_id: str) -> Iterator[builtins.list[str]]:
        """The batch's items' job ids in their index order, ``ITEMS_PER_READ`` at a time."""
        cursor = None
        while ids := self.item_ids_after(batch_id, cursor, ITEMS_PER_READ):
            yield ids
            cursor = ids[-1]

    def item_ids_at(self, batch_id: str, start: int, count: int) -> builtins.list[str]:
        """Up to ``count`` of the batch's items' job ids from the ``start``-th (0 the first), in their index order: a
        page of them (the dashboard's contact sheet)."""
        return [text(i) for i in self.connection.zrangebylex(self.keys.batch_jobs(batch_id), "-", "+",
                                                             start=start, num=count)]

    def created_before(self, cutoff_id: str, limit: int) -> builtins.list[str]:
        """Ids of up to ``limit`` batches made before the batch id ``cutoff_id`` would be, oldest first."""
        return [text(i) for i in self.connection.zrangebylex(self.keys.all_batches, "-", f"({cutoff_id}",
                                                             start=0, num=limit)]

    def forget(self, batch_id: str) -> None:
        """Drop a batch's record, counts and indexes (its items are jobs, removed as jobs are)."""
        key_id = self.connection.hget(self.keys.batch(batch_id), "key_id")
        pipe = self.connection.pipeline(transaction=True)
        pipe.delete(self.keys.batch(batch_id), self.keys.batch_jobs(batch_id), self.keys.batch_unsent(batch_id))
        pipe.hdel(self.keys.batch_counts, *(f"{batch_id}|{name}" for name in (*_COUNTED, "ended", "notify")))
        pipe.zrem(self.keys.owner_batches(owner_of(text(key_id) if key_id else None)), batch_id)
        pipe.zrem(self.keys.all_batches, batch_id)
        pipe.zrem(self.keys.batches_unmade, batch_id)
        pipe.execute()


def _batch(record: dict, counted: dict) -> Batch:
    numbers = {name: int(counted[name] or 0) for name in st.STATUSES}
    ended_at, canceled_at, interrupted = counted["ended_at"], record.get("canceled_at"), record.get("interrupted_at")
    events = record.get("notify_events") or ""
    return Batch(id=record["id"], model=record["model"], total=int(counted["total"] or record.get("total") or 0),
                 created_at=float(record["created_at"]), key_id=record.get("key_id") or None,
                 metadata=json.loads(record.get("metadata") or "{}"), notify_url=record.get("notify_url") or None,
                 notify_events=tuple(e for e in events.split(",") if e),
                 counts={name: n for name, n in numbers.items() if n}, cost_credits=float(counted["cost"] or 0),
                 sent=int(counted["sent"] or 0),
                 ended_at=float(ended_at) if ended_at else None,
                 canceled_at=float(canceled_at) if canceled_at else None,
                 asked=int(record.get("total") or 0), interrupted_at=float(interrupted) if interrupted else None)
