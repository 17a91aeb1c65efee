-- needs: slots_prelude, members, slot_holders, slot_time, slots_accounts, slot_counts, sweep_index
-- After the prelude. KEYS[K.after + 1]: the job's record (the script's own key); KEYS[K.after + 2], when given: the
-- submit lock of the submission that gives the slot back. ARGV[rest...]: pool, job id, pause in ms (0 = none), wait in
-- ms (0 = none), and with the lock the token it was taken with. A queued job gives its slot back and goes back in its
-- owner's line at its old place (the line orders by job id, which is its creation order) and out of the due
-- index; a pause holds its pool at the account whose slot it held. With a wait, the job alone stays out
-- of line until then (the sweep puts it back when it comes due), counted among its owner's jobs waiting
-- aside: its slot is freed and nothing else is held back. The turn it was given is refunded: the slot
-- went back without a task at BFL.
local s = slots_prelude.start(slots_accounts.read())
local now, K, due, admin, fair, rest = s.now, s.K, s.due, s.admin, s.fair, s.rest
local accounts, account_named, holders, release = s.accounts, s.account_named, s.holders, s.release
local pool, job, pause, wait = s.by_name[ARGV[rest]], ARGV[rest + 1], tonumber(ARGV[rest + 2]), tonumber(ARGV[rest + 3])
local aside = K.aside
local status, key_id, batch_id, deadline, end_user = unpack(redis.call('HMGET', KEYS[K.after + 1], 'status', 'key_id',
                                                                       'batch_id', 'deadline', 'end_user'))
if status ~= 'queued' then return 0 end
-- The submission's lock goes with its slot: a dispatcher woken below may hand the job a slot again right away, and a
-- sender must then find the lock free, not held by the submission still returning (it would skip the job, which
-- would hold that slot unsent until the sweep). Freed only with its own token, as lock_release.lua does.
local lock = KEYS[K.after + 2]
if lock and redis.call('GET', lock) == ARGV[rest + 4] then redis.call('DEL', lock) end
-- Its owner: its app key, or the admin owner (store/owners.py).
local owner = (key_id and key_id ~= '') and key_id or admin
-- A batch item's member is its bulk form, ranked by its deadline (members.lua): back at its place in its owner's order.
local member = members.member(owner, job, batch_id and batch_id ~= '', deadline, end_user)
local held_at, holder, charged, _, weight, mark = slot_holders.parse(redis.call('HGET', holders, job))
local account = account_named[held_at or '']
redis.call('HDEL', holders, job)
local paused, freed
for _, each in ipairs(accounts) do
  local its = each.pools[pool.name]
  if redis.call('ZREM', its.slots, job) == 1 then
    slot_counts.freed(K.slot_counts, its.slots)
    -- Counted before the slot went back (the look for lapsed slots), if at all: one fewer now.
    its.held, each.held = its.held and its.held - 1, each.held and each.held - 1
    release(holder or owner)
    -- Its task never reached BFL: the turn costs nothing.
    slot_time.settle(fair, its.slots, holder or owner, charged or 0, nil, false, weight, mark)
    freed = true
    account = account or each
  end
end
-- Wakes one worker's dispatcher (one item is enough, however many reasons): a freed slot goes on to the next job now,
-- not at the next sweep.
local function wake()
  if redis.call('LPUSH', K.slot_freed, 1) > 1 then redis.call('LTRIM', K.slot_freed, 0, 0) end
end
if wait > 0 then
  sweep_index.add(due, K.sweep_added, now + wait / 1000, job)
  redis.call('ZREM', pool.line, member)
  redis.call('ZADD', aside, 0, member)
  if freed then wake() end
  return 1
end
redis.call('ZREM', aside, member)
redis.call('ZREM', due, job)
redis.call('ZADD', pool.line, 0, member)
if pause > 0 and account then
  paused = account.pools[pool.name].paused
  if redis.call('PTTL', paused) < pause then redis.call('SET', paused, 1, 'PX', pause) end
  if freed then wake() end
else
  -- Back in line (from waiting aside, or from its slot): an idle dispatcher takes its turn now.
  wake()
end
return 1
