-- needs: slots_accounts, routes, slot_time, fair_turns, members, slot_holders, sweep_index
-- Shared by the slot scripts that give and take slots: slots held past their lease freed, the owners' fair
-- share, and what may be taken now (the accounts, pools, limits and reads are slots_accounts.lua's).
--
-- Fair share is start-time fair queueing over owners (fair_turns.lua): a turn goes to the owner with
-- the earliest start among those with a job that may take a slot now (an account its route allows is
-- not cooling and has room in the job's pool, and the owner is under its max_active), and costs it its
-- slot time / weight (see slot_time.lua); ties go to the earliest job. Within an owner, its earliest job
-- in any pool with room goes first. The job takes the slot of the least busy account it may use. Each
-- owner's line in a pool is one lexical range, so finding the candidates costs one lookup per owner
-- with work waiting, whatever the number of jobs; checking them, one per account.

local slots_prelude = {}

-- Frees the slots past their lease (only those of ``only``, a pool, when given: a slot script that gives one turn of
-- that pool's; another pool's left a moment longer only counts as held until the next dispatch frees it; none with
-- ``keep_lapsed``: a dispatch between the dispatcher's looks for them), then adds to
-- ``s`` (slots_accounts.read()'s context) what a slot script calls: release(owner), pick(), serve(turn), open_in(pool)
-- (the accounts with room in it now), alone(pool, owner, job, item) and any_waiting(). Returns ``s``.
function slots_prelude.start(s, only, keep_lapsed)
  local now, slot_lease, submit_lease, due, held = s.now, s.slot_lease, s.submit_lease, s.due, s.held
  local passes, weights, default_weight = s.passes, s.weights, s.default_weight
  local holders, route_index, fair, pools, accounts = s.holders, s.route_index, s.fair, s.pools, s.accounts
  local held_by, owner_room, cool_of, cooling = s.held_by, s.owner_room, s.cool_of, s.cooling
  local held_in, held_over, paused_ms = s.held_in, s.held_over, s.paused_ms

  local function release(owner)
    local left = redis.call('HINCRBY', held, owner, -1)
    if left <= 0 then redis.call('HDEL', held, owner) end
    held_by[owner] = math.max(left, 0)
  end

  -- A slot held past its lease belongs to a job that never finished: it is free again, charged as held. The slots
  -- left are counted anew (slot_counts.lua), which mends a count an older release did not keep.
  local recounted = {}
  for _, account in ipairs(keep_lapsed and {} or accounts) do
    for _, pool in ipairs(only and {only} or pools) do
      local its = account.pools[pool.name]
      local slots = its.slots
      local expired = redis.call('ZRANGEBYSCORE', slots, '-inf', now - slot_lease, 'WITHSCORES')
      for i = 1, #expired, 2 do
        local job, taken = expired[i], tonumber(expired[i + 1])
        redis.call('ZREM', slots, job)
        local _, owner, charged, _, weight, mark = slot_holders.parse(redis.call('HGET', holders, job))
        redis.call('HDEL', holders, job)
        if owner then release(owner) end
        slot_time.settle(fair, slots, owner, charged, now - taken, false, weight, mark)
      end
      its.held = redis.call('ZCARD', slots)
      recounted[#recounted + 1], recounted[#recounted + 2] = slots, its.held
    end
  end
  if #recounted > 0 then redis.call('HSET', s.K.slot_counts, unpack(recounted)) end

  -- A pool full at an account has no room there, whatever else holds the account back: a slot freed in it wakes a
  -- dispatch. Else an account held back by a cooldown or a pause marks the script's context ``on_timer``: its end
  -- frees no slot, so it pushes no wake-up (any_waiting says which).
  local function room(account, pool)
    local its = account.pools[pool.name]
    if held_in(account, pool.name) >= its.limit then return false end
    -- No sender of the caller's free for the account (s.senders, a dispatch's): one that ends wakes its dispatcher.
    if s.senders and s.senders[account.name] <= 0 then return false end
    -- Storage is far behind (store_pacing.lua): no send goes, whichever the account; the mark's lift wakes a dispatch.
    if s.storage_level() == 'all' then return false end
    if cooling(account) or paused_ms(its) ~= -2 then
      s.on_timer = true
      return false
    end
    return held_over(account) < account.max_active
  end
  -- The accounts with room in the pool now, in ARGV's order.
  local function open_in(pool)
    local open = {}
    for _, account in ipairs(accounts) do
      if room(account, pool) then open[#open + 1] = account end
    end
    return open
  end

  -- Whether a job may go through an account, by its route (routes.lua).
  local route_of = {}
  local function allows(job, account)
    if route_of[job] == nil then route_of[job] = redis.call('HGET', route_index, job) or '*' end
    return routes.allows(route_of[job], account.name, account.region)
  end
  -- Of the open accounts, the least busy that the job may use (its share of max_active in flight), or nil.
  local function account_for(job, open)
    local best, best_load
    for _, account in ipairs(open) do
      if allows(job, account) then
        local load = account.held / account.max_active
        if best == nil or load < best_load then best, best_load = account, load end
      end
    end
    return best
  end

  -- Whose turn is next, by the rule of fair_turns.lua.
  local turns = fair_turns.new(passes, weights, default_weight)
  -- An owner's weight its caller read already (the request's key): not asked of Redis.
  function s.know_weight(owner, w) turns.weight_of[owner] = (w and w > 0) and w or default_weight end

  -- The owners with jobs in a pool's line, each with its earliest job: one lookup per owner (fair_turns.heads). An
  -- owner's head served is looked up again only when its next one is asked for and was not read with it. The lines of
  -- the pools after the first are asked at once whether any holds a job, as the first of them is read: a dispatch's
  -- jobs are mostly in one pool, and empty lines are then read no further.
  local heads, later_empty = {}, nil
  -- Whether the pool is one of the later ones whose lines the EXISTS found empty.
  local function known_empty(pool) return pool ~= pools[1] and later_empty end
  local function heads_of(pool)
    if heads[pool.name] == nil then
      if pool ~= pools[1] and later_empty == nil then
        local lines = {}
        for i = 2, #pools do lines[#lines + 1] = pools[i].line end
        later_empty = #lines > 1 and redis.call('EXISTS', unpack(lines)) == 0
      end
      heads[pool.name] = known_empty(pool) and {} or fair_turns.heads(pool.line)
    end
    return turns.refresh(pool.line, heads[pool.name])
  end

  -- Every line is known empty (its caller's one EXISTS of them all found none) but for ``job``, a job of ``owner`` that
  -- has not joined its ``pool``'s line (its member there ``item``): the heads are what they would read with it there
  -- alone, and a turn it wins takes it out of no line.
  local unlisted = {}
  local function alone(pool, owner, job, item)
    for _, each in ipairs(pools) do heads[each.name] = {} end
    heads[pool.name] = {{owner = owner, job = job, item = item, after = false}}
    unlisted[job] = true
  end

  -- Whether a job still waits in a pool's line, from the heads this script read (a served one looked up again): a
  -- dispatch that found no turn read every pool's already, and so found every cooldown and pause that holds one back.
  local function any_waiting()
    for _, pool in ipairs(pools) do
      if heads[pool.name] == nil then
        if not known_empty(pool) and redis.call('EXISTS', pool.line) == 1 then return true end
      else
        for _, head in ipairs(heads_of(pool)) do
          if head.job then return true end
        end
      end
    end
    return false
  end

  -- An owner's jobs may differ in route (an admin's naming accounts): when its earliest job cannot go now, its
  -- earliest that can does, looked for among its first SCAN jobs in the line, so one blocked job holds up
  -- none of its owner's others. Nothing can go for an owner in a pool stays so for the script (slots only fill). An
  -- owner with end users' jobs is looked at end user by end user (its head's range, fair_turns.lua).
  local SCAN = 50
  local stuck = {}
  local function goable(pool, head, open)
    if account_for(head.job, open) then return head.job, head.item end
    local seen = pool.name .. '|' .. (head.first or head.owner)
    if stuck[seen] then return nil end
    -- An owner with end users' jobs: among those of the end user whose turn it is (fair_turns.lua).
    local items = redis.call('ZRANGEBYLEX', pool.line, head.first or members.owner_first(head.owner),
                             head.last or members.owner_last(head.owner), 'LIMIT', 1, SCAN)
    for _, m in ipairs(items) do
      local job = members.member_job(head.owner, m)
      if account_for(job, open) then return job, m end
    end
    stuck[seen] = true
    return nil
  end

  -- The next turn: {pool, owner, job, account} of the job that would take the next slot, or nil. A pool whose
  -- line is empty costs one lookup: its accounts' room is read only for a line with jobs waiting.
  local function pick()
    local best
    for _, pool in ipairs(pools) do
      local waiting = heads_of(pool)
      local open = #waiting > 0 and open_in(pool) or {}
      if #open > 0 then
        local candidates = {}
        -- Storage behind holds batch items back (store_pacing.lua); an owner's single jobs come before its items.
        local bulk_held = s.storage_level() == 'bulk'
        for _, head in ipairs(waiting) do
          local job, item
          if head.job and owner_room(head.owner) then job, item = goable(pool, head, open) end
          if job and bulk_held and members.is_bulk(item) then job = nil end
          if job then
            -- Its estimate at the account it would take is read with its pass: its turn, if it wins, costs that.
            local account = account_for(job, open)
            candidates[#candidates + 1] = {owner = head.owner, job = job, item = item, ref = head, account = account,
                                           also = slot_time.estimate_field(account.pools[pool.name].slots, head.owner)}
          end
        end
        local found = turns.earliest(candidates, nil, best)
        if found ~= best then
          found.pool, found.account = pool, found.head.account
          best = found
        end
      end
    end
    return best
  end

  -- Give the job a slot of the account's pool, as the owner's turn (and its end user's, from its ``head``).
  local function take(pool, account, job, owner, head)
    local its = account.pools[pool.name]
    local slots = its.slots
    -- Counted before the slot is added (room() counted both already).
    local in_pool, over = held_in(account, pool.name), held_over(account)
    redis.call('ZADD', slots, now, job)
    sweep_index.add(due, s.K.sweep_added, now + submit_lease, job)
    its.held, account.held = in_pool + 1, over + 1
    redis.call('HSET', s.K.slot_counts, slots, its.held)
    if account.probation then
      redis.call('HSET', account.cooling, 'probe', job)
      cool_of[account.name] = true
    end
    held_by[owner] = redis.call('HINCRBY', held, owner, 1)
    local cost = slot_time.estimate(passes, slots, owner, turns.also[slot_time.estimate_field(slots, owner)])
    turns.charge(owner, cost, head)
    redis.call('HSET', holders, job, slot_holders.value(account.name, owner, cost, now, turns.weight(owner),
                                                       turns.mark))
  end

  -- Take the picked job out of its line and give it its slot. Its owner's head moves on when the job was its head;
  -- a later job served in its place (goable) may have been the one known after it, which is then no longer known.
  local function serve(turn)
    if not unlisted[turn.job] then redis.call('ZREM', turn.pool.line, turn.head.item) end
    if s.senders then s.senders[turn.account.name] = s.senders[turn.account.name] - 1 end
    local head = turn.head.ref
    take(turn.pool, turn.account, turn.job, turn.owner, head)
    fair_turns.served(head, turn.job)
  end

  s.release, s.pick, s.serve, s.route_of, s.open_in, s.alone = release, pick, serve, route_of, open_in, alone
  s.any_waiting = any_waiting
  return s
end
