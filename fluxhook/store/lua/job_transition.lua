-- needs: effects, slot_time
-- A job's change of status and fields, and what must happen with it, in one atomic step.
--
-- KEYS[1] the job record; KEYS[2] the due index; KEYS[3] the notification outbox; then the keys
-- the spec names by their position in KEYS: the indexes of the statuses the job may leave and
-- enter, the slots it gives up and the lines it leaves (the jobs waiting aside among them; with the
-- slots' job -> owner, owner -> slots held, job -> account and job -> route, and the wake-up of a dispatcher), the BFL task index
-- of a bfl_id being set, the lock, and each effect's key (a timeline, the metrics hash, a day's or an hour's counters, the budget's
-- reservations, an RQ key).
-- ARGV[1] the spec (JSON, see JobStore.transition).
-- Runs after effects.lua (effects.apply) and slot_time.lua.
-- A job whose status, or one of the fields the spec names to announce (spec.announce: field, value pairs: BFL's word,
-- progress, cost, its recorded wait) really changes is announced on the spec's channel (its id), once per step: for
-- requests waiting on it (Prefer: wait) and the streams following it (store/job_changes.py).
-- The outbox gets the job's id when it ends, and '<id>|job.submitted' or '<id>|job.progress' when its
-- record's notify_events asks for those (SPEC §16).
-- Leaving its line (any move out of queued), a job's recorded wait goes (spec.unset: its fields).
-- Returns {moved (0/1), status before ('' = no job), lock taken (0/1)}.
local job, due, outbox = KEYS[1], KEYS[2], KEYS[3]
local spec = cjson.decode(ARGV[1])

local current = redis.call('HGET', job, 'status')
if not current then return {0, '', 0} end
local allowed = false
for _, status in ipairs(spec.from) do
  if status == current then allowed = true end
end
if not allowed then return {0, current, 0} end
if spec.if_equal then
  -- The field, then each way its value may be kept (sealed by each key of a rotation, or as it is).
  local kept, found = redis.call('HGET', job, spec.if_equal[1]), false
  for i = 2, #spec.if_equal do found = found or kept == spec.if_equal[i] end
  if not found then return {0, current, 0} end
end
if spec.if_same then
  -- Fields as they read when the change was worked out from them (a running job's word and progress, which
  -- never go backwards): changed meanwhile, nothing is written and the caller works it out again.
  for i = 1, #spec.if_same, 2 do
    if (redis.call('HGET', job, spec.if_same[i]) or '') ~= spec.if_same[i + 1] then return {0, current, 0} end
  end
end

if spec.count then redis.call('HINCRBY', job, spec.count, 1) end
local locked = 0
if spec.lock and redis.call('SET', KEYS[spec.lock.key], spec.lock.value, 'NX', 'EX', spec.lock.ttl) then
  locked = 1
end
-- A job whose notifications ask for its progress (its record's notify_events) has a job.progress in the outbox
-- when its progress changes: one member per job, however many changes come before the sweep takes it.
for i = 1, #spec.fields, 2 do
  if spec.fields[i] == 'progress' and spec.fields[i + 1] ~= '' then
    local events = redis.call('HGET', job, 'notify_events')
    if events and string.find(events, 'job.progress', 1, true)
        and redis.call('HGET', job, 'progress') ~= spec.fields[i + 1] then
      redis.call('ZADD', outbox, 'NX', spec.now, spec.id .. '|job.progress')
    end
  end
end
local announce = false
if spec.announce then
  local names, values = {}, {}
  for i = 1, #spec.announce, 2 do
    names[#names + 1] = spec.announce[i]
    values[#values + 1] = spec.announce[i + 1]
  end
  local kept = redis.call('HMGET', job, unpack(names))
  for i = 1, #names do announce = announce or (kept[i] or '') ~= values[i] end
end
redis.call('HSET', job, 'updated_at', spec.now, unpack(spec.fields))
if spec.bfl then
  -- The task's index lives as long as its record.
  local ttl = redis.call('TTL', job)
  if ttl > 0 then redis.call('SET', KEYS[spec.bfl.key], spec.id, 'EX', ttl)
  else redis.call('SET', KEYS[spec.bfl.key], spec.id) end
end

local new = spec.to
if new ~= '' and new ~= current then
  redis.call('HSET', job, 'status', new)
  if new == 'submitted' then
    local events = redis.call('HGET', job, 'notify_events')
    if events and string.find(events, 'job.submitted', 1, true) then
      redis.call('ZADD', outbox, 'NX', spec.now, spec.id .. '|job.submitted')
    end
  end
  redis.call('ZREM', KEYS[spec.statuses[current]], spec.id)
  redis.call('ZADD', KEYS[spec.statuses[new]], 0, spec.id)
  -- The slot or the place in line it gives back is its owner's (see slots_prelude.lua).
  local owner = spec.owners and redis.call('HGET', KEYS[spec.owners], spec.id)
  local freed = 0
  for _, key in ipairs(spec.slots) do
    local taken = redis.call('ZSCORE', KEYS[key], spec.id)
    if taken then
      freed = freed + redis.call('ZREM', KEYS[key], spec.id)
      -- Charged the time it held the slot; a task that ran at BFL teaches its pool's estimate.
      local f = {charges = KEYS[spec.fair.charges], estimates = KEYS[spec.fair.estimates],
                 passes = KEYS[spec.fair.passes], weights = KEYS[spec.fair.weights],
                 default_weight = spec.fair.default_weight}
      slot_time.settle(f, KEYS[key], spec.id, owner, math.max(0, tonumber(spec.now) - tonumber(taken)),
                  current == 'submitted')
    end
  end
  if freed > 0 then redis.call('HDEL', KEYS[spec.slot_accounts], spec.id) end
  if owner and freed > 0 and redis.call('HINCRBY', KEYS[spec.held], owner, -1) <= 0 then
    redis.call('HDEL', KEYS[spec.held], owner)
  end
  if freed > 0 and spec.freed then
    -- Wakes one worker's dispatcher; one item is enough to wake it, however many slots freed.
    redis.call('LPUSH', KEYS[spec.freed], 1)
    redis.call('LTRIM', KEYS[spec.freed], 0, 0)
  end
  if owner then
    for _, key in ipairs(spec.lines) do redis.call('ZREM', KEYS[key], members.member(owner, spec.id)) end
  end
  if spec.unset then redis.call('HDEL', job, unpack(spec.unset)) end
  if spec.terminal and spec.owners then
    redis.call('HDEL', KEYS[spec.owners], spec.id)
    redis.call('HDEL', KEYS[spec.routes], spec.id)
  end
  if spec.terminal then
    local notify_url, app_webhook = unpack(redis.call('HMGET', job, 'notify_url', 'app_webhook_url'))
    if (notify_url and notify_url ~= '') or (app_webhook and app_webhook ~= '') then
      redis.call('ZADD', outbox, spec.now, spec.id)
    end
    -- BFL's URLs are no use once the job has ended. Rewritten without them (and without empty
    -- fields), a record Redis may keep in its compact encoding again takes half the memory.
    local ttl = redis.call('PTTL', job)
    local all = redis.call('HGETALL', job)
    local keep = {}
    for i = 1, #all, 2 do
      if all[i] ~= 'result_url' and all[i] ~= 'polling_url' and all[i + 1] ~= '' then
        keep[#keep + 1] = all[i]
        keep[#keep + 1] = all[i + 1]
      end
    end
    redis.call('DEL', job)
    redis.call('HSET', job, unpack(keep))
    if ttl > 0 then redis.call('PEXPIRE', job, ttl) end
  end
  announce = true
end
if announce then redis.call('PUBLISH', spec.channel, spec.id) end
if spec.terminal then
  redis.call('ZREM', due, spec.id)
  -- An ended job's deadline (Cancel-After) has nothing left to end.
  if spec.deadlines then redis.call('ZREM', KEYS[spec.deadlines], spec.id) end
elseif spec.due then
  redis.call('ZADD', due, spec.due, spec.id)
end

-- The effects: only with a move, and only with the lock when one is named.
if not spec.lock or locked == 1 then
  effects.apply(spec.effects)
end
return {1, current, locked}
