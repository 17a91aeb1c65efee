"""Every Redis key fluxhook keeps, in one place: nothing else in fluxhook builds a key name. So are the slot scripts'
KEYS named once here: ``slot_script_keys`` builds them in their order, and the scripts read them by name through the
Lua ``slot_layout_lua`` writes (loaded as the script ``slot_layout``); a key added to the layout reaches both sides,
nothing is numbered by hand.

RQ's own keys (its queues and task records) are RQ's, reached only through RQ's API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from fluxhook.core.accounts import DEFAULT_ACCOUNT, Account
from fluxhook.core.job import QUEUED


@dataclass(frozen=True)
class Keys:
    """Key names under one ``prefix``."""

    prefix: str = "fh:"

    def job(self, job_id: str) -> str:
        """The job record, a hash (see ``fluxhook.core.job``)."""
        return f"{self.prefix}job:{job_id}"

    def bfl_task(self, bfl_id: str) -> str:
        """BFL's task id -> the id of the job fluxhook submitted as that task."""
        return f"{self.prefix}bfl:{bfl_id}"

    def bfl_trackers(self, bfl_id: str) -> str:
        """The jobs tracking BFL's task (``POST /v1/jobs/track``), a hash: owner (app key id or ``admin``) -> job id;
        one job per owner, so no key's track finds or changes another's."""
        return f"{self.prefix}tracks:{bfl_id}"

    @property
    def all_jobs(self) -> str:
        """Every job id, a sorted set ordered lexically (ids sort by creation time)."""
        return f"{self.prefix}jobs"

    def status(self, status: str) -> str:
        """The ids of the jobs in ``status``, ordered like ``all_jobs``."""
        return f"{self.prefix}status:{status}"

    @property
    def due(self) -> str:
        """Active job ids scored by when the fallback sweep should next look at them."""
        return f"{self.prefix}due"

    def check_line(self, account: str = DEFAULT_ACCOUNT) -> str:
        """The due jobs of ``account``'s tasks the sweep claimed, waiting for a worker's check (``store.check_line``):
        members ``<owner>:<job id>`` (a batch item's ``<owner>:~<job id>``) all scored 0, each owner's one lexical range."""
        return self._of_account(account, "check:line")

    @property
    def check_claims(self) -> str:
        """Job id -> the claim its check in its ``check_line`` was made with (the due index's score the sweep gave it)."""
        return f"{self.prefix}check:claims"

    @property
    def check_passes(self) -> str:
        """Owner -> the virtual time of its next turn at checks, and the clock in ``owners.CLOCK``, as ``work_passes``."""
        return f"{self.prefix}check:pass"

    @property
    def check_added(self) -> str:
        """A wake-up: a list holding at most one item, pushed when the sweep adds checks to a ``check_line``: wakes one
        worker's dispatcher for its checks (BLPOP, ``store.wakes``)."""
        return f"{self.prefix}check:added"

    @property
    def deadlines(self) -> str:
        """Jobs made with a deadline (``Cancel-After``), scored by it: a job leaves once it ends or its deadline was
        acted on, so the sweep reads only those due."""
        return f"{self.prefix}deadlines"

    @property
    def outbox(self) -> str:
        """The notification outbox: terminal jobs with a notify_url or an app webhook, scored by when they are due."""
        return f"{self.prefix}notify"

    def message(self, message_id: str) -> str:
        """One notification message and its attempts, a hash (see ``store.deliveries``)."""
        return f"{self.prefix}msg:{message_id}"

    def owner_messages(self, owner: str) -> str:
        """An owner's (app key id or ``admin``) notification messages, scored by when each was made."""
        return f"{self.prefix}ownmsgs:{owner}"

    @property
    def messages_due(self) -> str:
        """An older release's messages waiting for a retry (``<owner>:<message id>``): migrated to ``notify_due``."""
        return f"{self.prefix}msgdue"

    @property
    def notify_due(self) -> str:
        """Messages waiting for an attempt (members: ``deliveries.notify_member``), scored by when each is due; one being
        attempted stays, scored by its attempt's lease, so it comes due again if its process dies."""
        return f"{self.prefix}notify:due"

    @property
    def legacy_notify_sending(self) -> str:
        """An older release's messages being attempted, scored by their attempt's lease: today's note each in
        ``notify_busy`` (``store.migrations``)."""
        return f"{self.prefix}notify:sending"

    @property
    def notify_busy(self) -> str:
        """Attempts in flight, a hash: ``r:<owner>|<host>`` (one receiver of one owner) and ``o:<owner>`` -> count;
        ``m:<member>`` -> the lease of the attempt of that ``notify_due`` member in flight; and ``n:<either>`` -> the end
        user whose message parked behind it came back last, dropped with its count once nothing is in flight or
        parked there (``lua/notify_room.lua``)."""
        return f"{self.prefix}notify:busy"

    @property
    def notify_passes(self) -> str:
        """The owners' turns for notification attempts (``lua/fair_turns.lua``): owner -> pass, and the clock."""
        return f"{self.prefix}notify:passes"

    @property
    def notify_parked(self) -> str:
        """Messages due whose receiver or owner had no room, out of ``notify_due`` until an attempt of theirs ends:
        all scored 0, ``<busy field>|<deadline>|<member>``, a lexical range per receiver or owner; a single job's is
        written ``+<deadline>``, so it comes back before the batch items', an end user's `` 0.<group><form><deadline>``,
        a range per end user, ahead of those of none (``lua/notify_room.lua``)."""
        return f"{self.prefix}notify:parked"

    def notify_off(self, owner: str) -> str:
        """The targets an owner's receivers disabled with 410 Gone: a set of their URLs' digests."""
        return f"{self.prefix}notifyoff:{owner}"

    def timeline(self, job_id: str) -> str:
        """A job's timeline, a capped list of JSON entries, newest first."""
        return f"{self.prefix}events:{job_id}"

    @property
    def metrics(self) -> str:
        """Every counter and histogram bucket, one hash field each (see ``fluxhook.metrics``)."""
        return f"{self.prefix}metrics"

    def tally_marks(self, tally_id: str) -> str:
        """One process's marks of the batches of its tallied counts written (``effects.Tallies``)."""
        return f"{self.prefix}tally:{tally_id}"

    def _of_account(self, account: str, name: str) -> str:
        """Key ``name`` of one BFL account's: the default account's keep the names of releases before accounts, so an
        upgrade finds its tasks in flight, pauses and balance where they were."""
        return f"{self.prefix}{name}" if account == DEFAULT_ACCOUNT else f"{self.prefix}acct:{account}:{name}"

    def slots(self, pool: str, account: str = DEFAULT_ACCOUNT) -> str:
        """The jobs holding a BFL slot of ``account``'s ``pool``, scored by when they took it."""
        return self._of_account(account, f"slots:{pool}")

    @property
    def slot_holders(self) -> str:
        """Job -> ``<account>|<owner>|<charge>|<taken>|<weight>`` while it holds a slot (a hash;
        ``lua/slot_holders.lua``): the account whose slot it holds, its owner (whose slots held it counts in), the slot
        time (s) that owner was charged when it took the slot, an estimate the slot's release corrects to the time it
        was held, or refunds when the task never reached BFL, when it took the slot and the owner's weight its turn was
        charged by. One field, so a slot is taken with one write and given back with one read."""
        return f"{self.prefix}slot_holders"

    @property
    def legacy_slot_accounts(self) -> str:
        """Job -> the account whose slot it holds, as releases before ``slot_holders`` kept it (the migration moves
        it there, ``store.migrations``)."""
        return f"{self.prefix}slot_accounts"

    @property
    def routes(self) -> str:
        """Job -> its route (``fluxhook.core.accounts``), for the queued and active jobs that may not use every
        account (a hash; a job without one may use any)."""
        return f"{self.prefix}routes"

    def cooling(self, account: str) -> str:
        """Set while ``account`` cools down (a hash: until, reason): no task is sent through it."""
        return f"{self.prefix}acct:{account}:cooling"

    def line(self, pool: str) -> str:
        """The queued jobs in line for a slot of ``pool``: members ``<owner>:<job id>``, all scored 0, so
        each owner's jobs are one lexical range, in creation order (see ``fluxhook.store.slots``)."""
        return f"{self.prefix}line:{pool}"

    @property
    def aside(self) -> str:
        """The queued jobs waiting out of line (the budget holds them back until they come due): members
        ``<owner>:<job id>`` scored 0, like a line's, so each owner's are one lexical range and counted in one step."""
        return f"{self.prefix}aside"

    def legacy_line(self, pool: str) -> str:
        """A line as releases before fair share kept it (job ids scored by creation time): the migration
        (``store.migrations``) moves what it holds into ``line``, as the admin owner's jobs."""
        return f"{self.prefix}waiting:{pool}"

    @property
    def schema(self) -> str:
        """The version of the shape of what fluxhook keeps here, written once the migration (``store.migrations``)
        brought everything older releases wrote into it."""
        return f"{self.prefix}schema"

    @property
    def schema_lock(self) -> str:
        """Held by the one process migrating (``store.migrations``); the others wait for ``schema``."""
        return f"{self.prefix}schema:lock"

    @property
    def slot_freed(self) -> str:
        """A wake-up: a list holding at most one item, pushed when a status change frees a slot a job in line waits
        for, a job joins a line without taking one or an app key's share changes: the workers' dispatchers wait on it
        (BLPOP) to give the slot to the next job in turn at once."""
        return f"{self.prefix}slots:freed"

    @property
    def slot_counts(self) -> str:
        """A pool's slots key at an account (``slots``) -> how many slots it holds: what the slot scripts read an
        account's room from, in one read (``lua/slot_counts.lua`` keeps it; the sorted sets stay the truth). Named
        outside ``slots:``, where a pool's name follows: a pool can take no name of it, and a scan of the sets finds
        only sets."""
        return f"{self.prefix}slot_counts"

    @property
    def legacy_fair_owners(self) -> str:
        """Job id -> its owner, as releases before ``slot_holders`` kept it for every job the slots had queued (the
        migration moves a slot holder's into ``slot_holders``; a job in line is its member's)."""
        return f"{self.prefix}fair:owner"

    @property
    def fair_held(self) -> str:
        """Owner -> how many BFL slots its jobs hold (a field is dropped at zero)."""
        return f"{self.prefix}fair:held"

    @property
    def fair_passes(self) -> str:
        """Owner -> the virtual time of its next turn (start-time fair queueing, see ``fluxhook.store.slots``); in
        the field ``owners.CLOCK`` the virtual time of the last turn given: an owner coming back from idle starts there;
        and in a field ``~<pool's slots key>|<owner>`` how long (s) the owner's tasks have been holding a slot there, a
        running average: what a turn is charged before its task's own time is known (``lua/slot_time.lua``)."""
        return f"{self.prefix}fair:pass"

    @property
    def legacy_fair_clock(self) -> str:
        """The slots' clock, as releases before it was kept in ``fair_passes`` kept it (the migration moves it there)."""
        return f"{self.prefix}fair:clock"

    @property
    def legacy_fair_charges(self) -> str:
        """Job id -> the slot time its owner was charged, as releases before ``slot_holders`` kept it (the migration
        moves it there)."""
        return f"{self.prefix}fair:charge"

    @property
    def legacy_fair_estimates(self) -> str:
        """``<pool's slots key>|<owner>`` -> its estimate, as releases before they were kept in ``fair_passes`` kept
        them (the migration moves them there)."""
        return f"{self.prefix}fair:estimate"

    @property
    def share_weights(self) -> str:
        """Owner -> its ``weight``, a positive number (absent: ``owners.DEFAULT_WEIGHT``). Written by whoever manages app keys."""
        return f"{self.prefix}share:weight"

    @property
    def share_max_active(self) -> str:
        """Owner -> its ``max_active``, the most slots its jobs may hold at once (absent: no limit of its own)."""
        return f"{self.prefix}share:max_active"

    @property
    def queued_jobs(self) -> str:
        """``status(QUEUED)``, named for the slot scripts' layout (``SLOT_SHARED``): its size bounds any one
        owner's queued jobs, so a new job whose owner is far from its ``max_queued`` is let in on one ZCARD."""
        return self.status(QUEUED)

    @property
    def queue_room(self) -> str:
        """Room in owners' queues held for the batches being made (``lua/queue_room.lua``), a hash: owner -> the
        items its batches being made hold room for (dropped at zero); ``~<batch id>`` -> that batch's items not made
        yet (an owner id holds no '~')."""
        return f"{self.prefix}queue:room"

    @property
    def queue_room_lapses(self) -> str:
        """Each hold of ``queue_room``, ``<owner>|<batch id>``, scored by when it lapses (epoch seconds): a making that
        stopped (its process died) gives back the room it held then."""
        return f"{self.prefix}queue:room:lapses"

    def work_line(self, kind: str) -> str:
        """The jobs with a worker's task of ``kind`` to do (``work_lines.KINDS``), waiting to be moved into RQ:
        members ``<owner>:<job id>`` all scored 0, so each owner's are one lexical range, in creation order
        (see ``fluxhook.store.work_lines``)."""
        return f"{self.prefix}work:{kind}:line"

    def work_passes(self, kind: str) -> str:
        """Owner -> the virtual time of its next turn at ``kind``'s work (start-time fair queueing, as the slots'), and
        its clock in the field ``owners.CLOCK``, as ``fair_passes``."""
        return f"{self.prefix}work:{kind}:pass"

    def legacy_work_clock(self, kind: str) -> str:
        """``kind``'s clock, as releases before it was kept in ``work_passes`` kept it (the migration moves it there)."""
        return f"{self.prefix}work:{kind}:clock"

    def legacy_work_moving(self, kind: str) -> str:
        """Members of ``kind``'s line taken for RQ whose task was not yet queued -> when they were taken, as releases
        kept them beside their job's lease (the migration moves a kind's that is gone back into a line)."""
        return f"{self.prefix}work:{kind}:moving"

    @property
    def work_added(self) -> str:
        """A wake-up: a list holding at most one item, pushed when work joins a line: wakes one worker's dispatcher
        for its feeds (BLPOP)."""
        return f"{self.prefix}work:added"

    @property
    def notify_added(self) -> str:
        """A wake-up: a list holding at most one item, pushed when the outbox or ``notify_due`` gets something due now
        from outside a notifier (a job's end, a replay): wakes one worker's notifier (BLPOP, ``store.wakes``)."""
        return f"{self.prefix}notify:added"

    @property
    def sweep_added(self) -> str:
        """A wake-up: a list holding at most one item, pushed when a job joins the sweep's due or deadline index while
        it was empty (a web process's send, a track, a Cancel-After): wakes one worker's sweeper at rest (BLPOP,
        ``store.wakes``), which otherwise learns of work only from its own process."""
        return f"{self.prefix}sweep:added"

    @property
    def sweep_indexes(self) -> tuple[str, ...]:
        """The sorted sets a sweep reads, each scored by due time (epoch seconds): the due jobs, the deadlines, the
        batches being canceled and those being made; what a sweeper at rest watches, and wakes on ``sweep_added``."""
        return self.due, self.deadlines, self.batches_canceling, self.batches_unmade

    @property
    def retry_added(self) -> str:
        """A wake-up: a list holding at most one item, pushed when an RQ task's retry is scheduled for later: wakes
        one worker's cron thread, which moves retries whose time came into their queues (BLPOP, ``store.wakes``)."""
        return f"{self.prefix}rq:retry:added"

    def worker_stop(self, process: str) -> str:
        """A worker process's stop: pushed once for each of its threads blocked on a wake-up list, so each wait
        ends at once (BLPOP on its list and this one, ``store.wakes``)."""
        return f"{self.prefix}worker:{process}:stop"

    def worker_nudge(self, process: str) -> str:
        """A worker process's nudges of its own dispatcher: a hand freed in a full part pushes the kind's name, which
        ends the dispatcher's wait (``Wakes.nudge``); it expires as the stop list does."""
        return f"{self.prefix}worker:{process}:nudge"

    def paused(self, pool: str, account: str = DEFAULT_ACCOUNT) -> str:
        """Set while BFL asked ``account``'s ``pool`` to wait (Retry-After); expires by itself."""
        return self._of_account(account, f"paused:{pool}")

    def stored_counts(self, minute: int) -> str:
        """The results stored in one minute (epoch seconds // 60), all workers together: a hash of a bucket's first
        second -> how many (``core.pacing.RATE_BUCKET`` s each), tallied by each process; the rate sends are paced by."""
        return f"{self.prefix}stored:{minute}"

    @property
    def store_held(self) -> str:
        """Set while new sends to BFL wait for storage (``lua/store_pacing.lua``): ``<until>|<backlog>|<rate>``
        (``until`` '' when no rate says); it lives a guard's while unless renewed, so a pacer that died holds nothing
        for long."""
        return f"{self.prefix}store:held"

    def strikes(self, pool: str, account: str = DEFAULT_ACCOUNT) -> str:
        """BFL's refusals of ``account``'s ``pool`` (or of the whole account: pool ``*``) in a row, for the backoff."""
        return self._of_account(account, f"strikes:{pool}")

    def download_lock(self, job_id: str) -> str:
        """Held by the job's queued or running download task (its value is the RQ task's id)."""
        return f"{self.prefix}download:{job_id}"

    def hint_gap(self, job_id: str) -> str:
        """Held for a few seconds after a hint on the static URL made the job ask BFL (``steps.applying.hint``)."""
        return f"{self.prefix}hinted:{job_id}"

    def submit_lock(self, job_id: str) -> str:
        """Held while some process sends the job's task to BFL."""
        return f"{self.prefix}submit:{job_id}"

    def variants(self, job_id: str) -> str:
        """The variants of a job's stored files, a hash: storage key -> ``<sha256> <size>`` once stored,
        '' while one is being made (written before its bytes, so a delete finds every key that may hold a file)."""
        return f"{self.prefix}variants:{job_id}"

    def variant_lock(self, job_id: str, storage_key: str) -> str:
        """Held while some web process makes the variant stored under ``storage_key`` (its value a lock token)."""
        return f"{self.prefix}variant:{job_id}:{storage_key}"

    def kept_marks(self, account: str, hour: int | str) -> str:
        """The tasks reported on the static URL with ``account``'s secret in UTC hour ``hour`` (s since the epoch //
        3600) that no job tracked then: a fixed-size bitmap, a bit per task id's hash (``store/kept_callbacks.py``)."""
        return f"{self.prefix}reported:{account}:{hour}"

    def legacy_kept_for_task(self, account: str, bfl_id: str) -> str:
        """A callback body an older release kept for a task no job tracked (the migration turns it into a mark)."""
        return f"{self.prefix}orphan:{account}:{bfl_id}"

    def legacy_kept_of_account(self, account: str) -> str:
        """An older release's bookkeeping of the bodies ``account``'s static secret kept, and (``:sizes``, ``:bytes``
        after it) their sizes: gone with the migration."""
        return f"{self.prefix}orphans:{account}"

    def kept_for_job(self, job_id: str) -> str:
        """A callback body that overtook BFL's answer to the job's submission."""
        return f"{self.prefix}early:{job_id}"

    def model_jobs(self, model: str) -> str:
        """The ids of the jobs of ``model``, ordered like ``all_jobs``."""
        return f"{self.prefix}model:{model}"

    @property
    def models(self) -> str:
        """Every model name a job was created with (a set), so an expired job can be dropped from its index."""
        return f"{self.prefix}models"

    def usage(self, day: str) -> str:
        """One UTC day's usage counters (``YYYY-MM-DD``), a hash of integers (see ``fluxhook.credits.accounting``)."""
        return f"{self.prefix}usage:{day}"

    def hourly(self, hour: str) -> str:
        """One UTC hour's outcome counters (``YYYY-MM-DDTHH``), a hash of integers (see ``fluxhook.credits.accounting``)."""
        return f"{self.prefix}hourly:{hour}"

    @property
    def budget_limits(self) -> str:
        """The daily credit limits (``BFL_DAILY_CREDIT_LIMIT``, each account's) the last process started with, as one
        text: a process started with others looks again at the jobs they held (``UsageStore.limits_changed``)."""
        return f"{self.prefix}budget:limits"

    @property
    def budget_held(self) -> str:
        """Credits reserved for submissions under way: job id -> ``<deadline ms> <micro-credits>[ alone]``, or a
        record of a job waiting: ``<deadline ms> 0 waits <owner>`` to go alone, ``<deadline ms> 0 next <owner>
        <seq>`` a boundable one (see ``lua/budget_reserve.lua``)."""
        return f"{self.prefix}budget:held"

    def budget_turns(self, held: str) -> str:
        """The turns of the jobs that go alone under the limit whose reservations are ``held``: owner -> its pass
        (``lua/fair_turns.lua``), ``owners.CLOCK`` the start of the last turn to go alone, ``~head`` the leader's gate
        and ``~seq`` the counter of waiting boundable jobs."""
        return f"{held}:turns"

    def legacy_budget_clock(self, held: str) -> str:
        """The clock of ``budget_turns(held)``, as releases before it was kept there kept it (the migration moves it)."""
        return f"{held}:clock"

    @property
    def prices_over_catalog(self) -> str:
        """Model -> the catalog price BFL was seen to exceed, a hash (see ``fluxhook.store.prices``)."""
        return f"{self.prefix}prices:over_catalog"

    @property
    def prices_within_catalog(self) -> str:
        """Model -> the catalog price BFL was seen to price a request within, a hash (see ``fluxhook.store.prices``)."""
        return f"{self.prefix}prices:within_catalog"

    def key_budget_held(self, key_id: str) -> str:
        """Credits reserved against an app key's daily_credits, as ``budget_held`` holds the account's."""
        return f"{self.prefix}budget:held:{key_id}"

    def bfl_account_budget_held(self, account: str) -> str:
        """Credits reserved against one BFL account's own daily limit (``BFL_<NAME>_DAILY_CREDIT_LIMIT``)."""
        return f"{self.prefix}budget:held:account:{account}"

    def bfl_balance(self, account: str = DEFAULT_ACCOUNT) -> str:
        """The account's credits as BFL last said (``GET /v1/credits``), a hash: credits, at, and ``bfl``, the BFL it
        was read from (``Account.bfl_digest``)."""
        return self._of_account(account, "balance")

    @property
    def balance_ended(self) -> str:
        """Account -> when a job it ran at BFL last ended (epoch seconds), a hash: a balance read before that is read
        again (``credits.balance``). One field per account ever configured, so it needs no life of its own."""
        return f"{self.prefix}balance_ended"

    def reread_lock(self, account: str = DEFAULT_ACCOUNT) -> str:
        """Held for a few seconds by the process that asks BFL again for a balance out of date (a job of the account
        ended since it was read) or missing (none kept, or another BFL's)."""
        return self._of_account(account, "balance:reread")

    def balance_lock(self, account: str = DEFAULT_ACCOUNT) -> str:
        """Held for one refresh interval by the worker that asked BFL for the account's balance."""
        return self._of_account(account, "balance:lock")

    def recheck_lock(self, account: str) -> str:
        """Held between two reads of the balance of an account that ran out of credits (its cooldown's end)."""
        return f"{self.prefix}acct:{account}:recheck:lock"

    def idempotency(self, scope: str, key: str) -> str:
        """What became of the first request with an Idempotency-Key; ``scope`` and ``key`` are digests."""
        return f"{self.prefix}idem:{scope}:{key}"

    def app_key(self, key_id: str) -> str:
        """An app key's record, a hash (see ``fluxhook.store.app_keys``): its limits, ``weight``, the hash of its secret."""
        return f"{self.prefix}appkey:{key_id}"

    @property
    def app_keys(self) -> str:
        """Every app key's id, a sorted set scored by creation time."""
        return f"{self.prefix}appkeys"

    def key_jobs(self, key_id: str) -> str:
        """The ids of the jobs an app key created, ordered like ``all_jobs``."""
        return f"{self.prefix}keyjobs:{key_id}"

    def key_requests(self, key_id: str) -> str:
        """An app key's submissions of the last minute, a sorted set scored by time (its rate limit)."""
        return f"{self.prefix}keyrate:{key_id}"

    def key_items(self, key_id: str) -> str:
        """An app key's items clock (``items_per_minute``, ``lua/token_bucket.lua``): when its bucket is full again, ms."""
        return f"{self.prefix}keyitems:{key_id}"

    def key_items_today(self, key_id: str, day: str) -> str:
        """How many items an app key created on UTC ``day`` (``YYYY-MM-DD``; ``items_per_day``)."""
        return f"{self.prefix}keyitems:{key_id}:{day}"

    def key_reads(self, key_id: str) -> str:
        """An app key's read clock (its ``reads_per_minute``, else ``READS_PER_MINUTE``): when its bucket of reads is
        full again, ms."""
        return f"{self.prefix}keyreads:{key_id}"

    def key_link_reads(self, key_id: str) -> str:
        """The read clock of an app key's jobs' files read by their signed links (a bucket of its own, at the key's
        read rate), as ``key_reads``."""
        return f"{self.prefix}keylinkreads:{key_id}"

    def end_users(self, key_id: str) -> str:
        """What an app key set for each of its end users by hand (``store/end_users.py``): end user -> JSON of its
        limits and its block of the day. Only admins write it, one field an end user named."""
        return f"{self.prefix}endusers:{key_id}"

    def end_user_day(self, owner: str, day: str) -> str:
        """One UTC day's counters of an owner's end users (an app key's, or the admin tokens'): ``<end user>:<counter>``
        -> whole number (``fluxhook.credits.accounting``); it expires some weeks after the day."""
        return f"{self.prefix}enduserday:{owner}:{day}"

    def end_user_requests(self, key_id: str, end_user: str) -> str:
        """An end user's submissions of the last minute, as ``key_requests`` holds its key's."""
        return f"{self.prefix}endusrate:{key_id}:{end_user}"

    def end_user_queued(self, key_id: str, end_user: str) -> str:
        """The ids of an end user's jobs made while its key limits its queued jobs (those still queued, and some that
        left the line since, pruned as its limit is reached), scored by creation (ms)."""
        return f"{self.prefix}endusqueued:{key_id}:{end_user}"

    def end_user_active(self, key_id: str, end_user: str) -> str:
        """The ids of an end user's jobs sent while its key limits its jobs at BFL (those still there, and some that
        ended since, pruned as its limit is reached), scored by when they were sent (ms)."""
        return f"{self.prefix}endusactive:{key_id}:{end_user}"

    def end_user_budget_held(self, key_id: str, end_user: str) -> str:
        """Credits reserved against an end user's daily_credits, as ``key_budget_held`` holds its key's."""
        return f"{self.prefix}budget:held:eu:{key_id}:{end_user}"

    def end_user_admitted(self, key_id: str, end_user: str) -> str:
        """The bounds of an end user's jobs admitted and not yet settled, held against its daily_credits from their
        admission (``lua/end_user_admit.lua``): job id -> '<deadline ms> <micro-credits>'."""
        return f"{self.prefix}budget:admitted:eu:{key_id}:{end_user}"

    def signed_out(self, session: str) -> str:
        """Set once the dashboard session ``session`` (a digest of its id) was signed out, for its cookie's lifetime."""
        return f"{self.prefix}signedout:{session}"

    def idempotency_of_caller(self, scope: str) -> str:
        """The Idempotency-Key records one bearer token (``scope``, a digest) holds, scored by when each goes."""
        return f"{self.prefix}idemof:{scope}"

    def streams_of(self, caller: str) -> str:
        """The streams one caller (``streams.caller_scope``) holds open, scored by when each one's lease ends (ms)."""
        return f"{self.prefix}streams:{caller}"

    def answers_of(self, caller: str) -> str:
        """The answers one caller is being written at once (a ZIP, a file: receiver/answers.py), scored as streams."""
        return f"{self.prefix}answers:{caller}"

    @property
    def job_changes(self) -> str:
        """The pub/sub channel on which a job's id is published when it is made or changes (``store.job_changes``)."""
        return f"{self.prefix}changed"

    @property
    def replication_marker(self) -> str:
        """A counter written last by a request that waits for replicas: ``WAIT`` then covers every
        write before it on the primary, whichever connection made them (see ``fluxhook.store.replication``)."""
        return f"{self.prefix}replication:marker"

    def batch(self, batch_id: str) -> str:
        """A batch's record, a hash (``store/batches.py``): what its request asked for; its counts are ``batch_counts``'."""
        return f"{self.prefix}batch:{batch_id}"

    def batch_jobs(self, batch_id: str) -> str:
        """The ids of a batch's items, ordered like ``all_jobs``: by their index too, as they are made in order."""
        return f"{self.prefix}batchjobs:{batch_id}"

    def batch_unsent(self, batch_id: str) -> str:
        """What is left of a batch's items that ended without being sent (``lua/batch_prune.lua``): a bitmap, two bits
        per item index, the first set once the item is gone, the second when its batch's cancel ended it (else its
        deadline)."""
        return f"{self.prefix}batchunsent:{batch_id}"

    @property
    def batch_counts(self) -> str:
        """Every batch's counts, a hash of fields ``<batch id>|<name>`` (``lua/batch_counts.lua``)."""
        return f"{self.prefix}batchcounts"

    def owner_batches(self, owner: str) -> str:
        """The ids of an owner's batches (``store/owners.py``), a sorted set scored 0, ordered by id (time)."""
        return f"{self.prefix}batches:{owner}"

    @property
    def batches_canceling(self) -> str:
        """The batches canceled whose items are still being ended, scored by when a sweep next takes one (a claim)."""
        return f"{self.prefix}batches:canceling"

    @property
    def batches_unmade(self) -> str:
        """The batches whose items are still being made, scored by when their making counts as stopped unless it goes
        on (``Batches.making_went_on``): the sweep cuts one that stopped (``lua/batch_cut.lua``)."""
        return f"{self.prefix}batches:unmade"

    @property
    def batches_making(self) -> str:
        """The turns to make a batch taken now (its items checked, then made), each a lease (``lua/batch_turns.lua``):
        its waiter's member (``batch_turn_line``) -> its end (ms)."""
        return f"{self.prefix}batches:making"

    @property
    def batch_turn_line(self) -> str:
        """The requests waiting for a turn to make a batch, members ``<owner>:<seq>.<items>`` all scored 0: one
        lexical range per owner, in the order they came (``lua/batch_turns.lua``)."""
        return f"{self.prefix}batchturn:line"

    @property
    def batch_turn_waiting(self) -> str:
        """The leases of the waiters of ``batch_turn_line``: member -> when it ends (ms), unless its request looks
        again."""
        return f"{self.prefix}batchturn:waiting"

    @property
    def batch_turn_passes(self) -> str:
        """The batch turns' passes by owner, their fair clock (``~clock``) and the waiters' counter (``~seq``)."""
        return f"{self.prefix}batchturn:pass"

    def batch_turn_wake(self, member: str) -> str:
        """A waiter's wake-up list: pushed once its turn to make a batch is given, its request blocked on it."""
        return f"{self.prefix}batchturn:wake:{member}"

    @property
    def all_batches(self) -> str:
        """Every batch's id, ordered like ``owner_batches``."""
        return f"{self.prefix}batches"


KEYS = Keys()


# The slot scripts' KEYS. Each is a ``Keys`` attribute, and the script's ``K.<name>``: one key each, first, in this order.
SLOT_SHARED = ("due", "fair_held", "fair_passes", "share_weights", "share_max_active", "slot_holders", "routes",
               "slot_freed", "aside", "slot_counts", "queued_jobs", "queue_room", "queue_room_lapses", "sweep_added",
               "store_held")
# Then per pool, in the scripts' order of pools: ``K.pool[i].<name>`` (``Keys.<name>(pool)``).
SLOT_PER_POOL = ("line",)
# Then per account, in their order: ``K.account[j].<name>`` (``Keys.<name>(account)``), then per pool
# ``K.account[j].pool[i].<name>`` (``Keys.<name>(pool, account)``).
SLOT_PER_ACCOUNT = ("cooling",)
SLOT_PER_ACCOUNT_POOL = ("slots", "paused")


def slot_script_keys(keys: Keys, pools: Sequence[str], accounts: Sequence[Account]) -> list[str]:
    """The KEYS of every slot script; the keys a script has of its own follow from ``K.after + 1`` in Lua: a job's
    record, or for a job ``slots_acquire`` makes, the keys of its record's spec (``JobStore.creation``)."""
    found = [getattr(keys, name) for name in SLOT_SHARED]
    found += [getattr(keys, name)(pool) for pool in pools for name in SLOT_PER_POOL]
    for account in accounts:
        found += [getattr(keys, name)(account.name) for name in SLOT_PER_ACCOUNT]
        found += [getattr(keys, name)(pool, account.name) for pool in pools for name in SLOT_PER_ACCOUNT_POOL]
    return found


def slot_layout_lua() -> str:
    """The Lua that names the KEYS ``slot_script_keys`` builds: ``slot_layout(n_pools, n_accounts)`` returns ``K``."""
    shared = ", ".join(f"{name} = KEYS[{i}]" for i, name in enumerate(SLOT_SHARED, 1))
    return "\n".join([
        "-- Written by store/keys.py (slot_layout_lua): the slot scripts' KEYS by name.",
        "local function slot_layout(n_pools, n_accounts)",
        f"  local K = {{{shared}, pool = {{}}, account = {{}}}}",
        f"  local at = {len(SLOT_SHARED)}",
        "  local function next_key() at = at + 1; return KEYS[at] end",
        "  for i = 1, n_pools do",
        "    K.pool[i] = {" + ", ".join(f"{name} = next_key()" for name in SLOT_PER_POOL) + "}",
        "  end",
        "  for j = 1, n_accounts do",
        "    local account = {" + ", ".join(f"{name} = next_key()" for name in SLOT_PER_ACCOUNT) + ", pool = {}}",
        "    for i = 1, n_pools do",
        "      account.pool[i] = {" + ", ".join(f"{name} = next_key()" for name in SLOT_PER_ACCOUNT_POOL) + "}",
        "    end",
        "    K.account[j] = account",
        "  end",
        "  K.after = at",
        "  return K",
        "end",
    ])
