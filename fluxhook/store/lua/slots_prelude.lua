-- Shared by the slot scripts: the pools, their limits, the owners' fair share, and what may be taken now.
--
-- Runs after slot_time.lua and fair_turns.lua (the rule of whose turn is next, shared with the workers' work lines).
-- KEYS[1] the due index; KEYS[2] job -> owner; KEYS[3] owner -> slots held; KEYS[4] owner -> pass;
-- KEYS[5] the clock; KEYS[6] owner -> weight; KEYS[7] owner -> max_active; KEYS[8] job -> slot time
-- charged; KEYS[9] pool -> slot time estimate; then per pool, in ARGV's order: its slots, its line,
-- its pause flag.
-- ARGV[1] now, ARGV[2] BFL_MAX_ACTIVE, ARGV[3] the slot lease (s), ARGV[4] the submit lease (s),
-- ARGV[5] the admin owner, ARGV[6] the weight of an owner without one (owners.DEFAULT_WEIGHT), ARGV[7] n pools,
-- then n pairs of pool name and limit; the script's own arguments follow.
--
-- Fair share is start-time fair queueing over owners (fair_turns.lua): a turn goes to the owner with
-- the earliest start among those with a job that may take a slot now (its pool has room, the owner is
-- under its max_active), and costs it its slot time / weight (see slot_time.lua); ties go to the earliest job. Within an owner, its earliest job in any pool with room
-- goes first. Each owner's line in a pool is one lexical range, so finding the candidates costs
-- one lookup per owner with work waiting, whatever the number of jobs.
local now, total = tonumber(ARGV[1]), tonumber(ARGV[2])
local slot_lease, submit_lease = tonumber(ARGV[3]), tonumber(ARGV[4])
local admin, default_weight = ARGV[5], tonumber(ARGV[6])
local due, owners, held, passes, clock_key, weights, caps = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local fair = {charges = KEYS[8], estimates = KEYS[9], passes = passes, weights = weights, default_weight = default_weight}
local pools, by_name = {}, {}
for i = 1, tonumber(ARGV[7]) do
  local pool = {name = ARGV[6 + 2 * i], limit = tonumber(ARGV[7 + 2 * i]),
                slots = KEYS[3 * i + 7], line = KEYS[3 * i + 8], paused = KEYS[3 * i + 9]}
  pools[i] = pool
  by_name[pool.name] = pool
end
local rest = 8 + 2 * #pools
local own_keys = 9 + 3 * #pools

local function fmt(x) return string.format('%.17g', x) end
local member = fair_member

local held_by = {}
local function held_of(owner)
  if held_by[owner] == nil then held_by[owner] = tonumber(redis.call('HGET', held, owner) or 0) end
  return held_by[owner]
end
local function release(owner)
  local left = redis.call('HINCRBY', held, owner, -1)
  if left <= 0 then redis.call('HDEL', held, owner) end
  held_by[owner] = math.max(left, 0)
end

-- A slot held past its lease belongs to a job that never finished: it is free again, charged as held.
local held_total = 0
for _, pool in ipairs(pools) do
  local expired = redis.call('ZRANGEBYSCORE', pool.slots, '-inf', now - slot_lease, 'WITHSCORES')
  for i = 1, #expired, 2 do
    local job, taken = expired[i], tonumber(expired[i + 1])
    redis.call('ZREM', pool.slots, job)
    local owner = redis.call('HGET', owners, job)
    if owner then release(owner) end
    settle_slot(fair, pool.slots, job, owner, now - taken, false)
  end
  held_total = held_total + redis.call('ZCARD', pool.slots)
end
local function room(pool)
  if redis.call('EXISTS', pool.paused) == 1 then return false end
  return redis.call('ZCARD', pool.slots) < pool.limit and held_total < total
end
-- Each owner's limit, read once per script (false: no limit of its own).
local cap_of = {}
local function owner_room(owner)
  if cap_of[owner] == nil then cap_of[owner] = tonumber(redis.call('HGET', caps, owner)) or false end
  return not cap_of[owner] or held_of(owner) < cap_of[owner]
end
-- Whose turn is next, by the rule of fair_turns.lua.
local turns = fair_turns(passes, clock_key, weights, default_weight)

-- The owners with jobs in a pool's line, each with its earliest job: one lookup per owner.
local heads = {}
local function heads_of(pool)
  if heads[pool.name] == nil then heads[pool.name] = fair_heads(pool.line) end
  return heads[pool.name]
end

-- The next turn: {pool, owner, job} of the job that would take the next slot, or nil.
local function pick()
  local best
  for _, pool in ipairs(pools) do
    if room(pool) then
      local found = turns.earliest(heads_of(pool), owner_room, best)
      if found ~= best then
        found.pool = pool
        best = found
      end
    end
  end
  return best
end

-- Give the job a slot of the pool, as the owner's turn.
local function take(pool, job, owner)
  redis.call('ZADD', pool.slots, now, job)
  redis.call('ZADD', due, now + submit_lease, job)
  held_total = held_total + 1
  held_by[owner] = redis.call('HINCRBY', held, owner, 1)
  local cost = slot_estimate(fair.estimates, pool.slots, owner)
  turns.charge(owner, cost)
  redis.call('HSET', fair.charges, job, fmt(cost))
end

-- Take the picked job out of its line and give it its slot.
local function serve(turn)
  redis.call('ZREM', turn.pool.line, member(turn.owner, turn.job))
  take(turn.pool, turn.job, turn.owner)
  if heads[turn.pool.name] then turn.head.job = fair_head(turn.pool.line, turn.owner) end
end
