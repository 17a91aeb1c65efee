-- Shared by the slot scripts: the pools, their limits, and what may be taken now.
--
-- KEYS[1] the due index; then per pool, in ARGV's order: its slots, its line, its pause flag.
-- ARGV[1] now, ARGV[2] BFL_MAX_ACTIVE, ARGV[3] the slot lease (s), ARGV[4] the submit lease (s),
-- ARGV[5] n pools, then n pairs of pool name and limit; the script's own arguments follow.
local now, total = tonumber(ARGV[1]), tonumber(ARGV[2])
local slot_lease, submit_lease = tonumber(ARGV[3]), tonumber(ARGV[4])
local due = KEYS[1]
local pools, by_name = {}, {}
for i = 1, tonumber(ARGV[5]) do
  local pool = {name = ARGV[4 + 2 * i], limit = tonumber(ARGV[5 + 2 * i]),
                slots = KEYS[3 * i - 1], line = KEYS[3 * i], paused = KEYS[3 * i + 1]}
  pools[i] = pool
  by_name[pool.name] = pool
end
local rest = 6 + 2 * #pools
local own_keys = 1 + 3 * #pools

-- A slot held past its lease belongs to a job that never finished: it is free again.
local held_total = 0
for _, pool in ipairs(pools) do
  redis.call('ZREMRANGEBYSCORE', pool.slots, '-inf', now - slot_lease)
  held_total = held_total + redis.call('ZCARD', pool.slots)
end
local function room(pool)
  if redis.call('EXISTS', pool.paused) == 1 then return false end
  return redis.call('ZCARD', pool.slots) < pool.limit and held_total < total
end
local function take(pool, job)
  redis.call('ZADD', pool.slots, now, job)
  redis.call('ZADD', due, now + submit_lease, job)
  held_total = held_total + 1
end
