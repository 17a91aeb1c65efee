-- needs: effects, slot_time, slot_holders, members, slot_counts, batch_counts, outbox, sweep_index
-- A job's change of status and fields, and what must happen with it, in one atomic step.
--
-- KEYS[1] the job record; KEYS[2] the due index; KEYS[3] the notification outbox; then the keys the spec names by their
-- position in KEYS: the indexes of the statuses the job may leave and enter, the slots it may give up (spec.slots:
-- account -> pool -> key; spec.slot_counts, their counts) and the lines it may leave (spec.lines: pool -> key, and
-- spec.aside, the jobs waiting aside); with the slots' owner -> slots held, job -> slot holder's entry
-- (slot_holders.lua) and job -> route, and the wake-up of a dispatcher with the lines whose jobs it is for (spec.freed:
-- {key, lines})), the BFL task index of a bfl_id being set, the lock taken and the lock freed, a key taken, and each
-- effect's key (a timeline, the metrics hash, a day's or an hour's counters, the budget's reservations, an RQ key), and
-- the notifiers' wake-up (spec.notify_added), pushed when the step puts something in the outbox, and the sweepers'
-- (spec.sweep_added), pushed when a job just sent is the only one due.
-- ARGV[1] the spec (JSON, see JobStore.transition).
-- Runs after effects.lua (effects.apply) and slot_time.lua.
--
-- The record is read once (one HMGET of what this step needs of it; all of it, one HGETALL, where the step answers
-- with it or may end the job), written once (one HSET of the fields with a value, the status and the counter; one HDEL
-- of the fields cleared and the wait it leaves; a job that ends is written anew, without what an ended job keeps no
-- longer). Only the job's own slot and line are touched: its account is job -> account's, its pool
-- and route its record's (a pool the spec does not name: every line).
-- A job whose status, or one of the fields the spec names to announce (spec.announce: field, value pairs: BFL's word,
-- progress, cost, its recorded wait) really changes is announced on the spec's channel (its id), once per step: for
-- requests waiting on it (Prefer: wait) and the streams following it (store/job_changes.py).
-- A batch item's move and BFL's charge for it count in its batch's counts (spec.batch_counts: batch_counts.lua), and its
-- batch's last item to end puts the batch's end in the outbox.
-- The outbox gets the job's id when it ends, and '<id>|job.submitted' or '<id>|job.progress' when its
-- record's notify_events asks for those.
-- Leaving its line (any move out of queued), a job's recorded wait goes (spec.unset: its fields).
-- spec.out_of_line: the caller knows the job is in no line (a dispatch gave it a slot); its move looks for no place.
-- spec.take {key, flag}: a key whose value the step takes (GETDEL) if the record's flag field says one was kept; the
-- flag goes with the step.
-- spec.read_back: the record as the step leaves it goes with the answer (HGETALL's list), for a caller that would
-- read it next (a request answering with the job it just sent): the step's one read of the record is then all of it.
-- spec.hold {keeps}: the job ends while BFL may still run its task (BFL has no cancel, docs/api.md): if it is 'submitted'
-- and holds a slot, it keeps the slot, stays due on its poll schedule and keeps the fields ``keeps`` names, for
-- BFL still counts the task against the account's slots. spec.release: no move; an ended job gives back the slot it
-- kept so (BFL said its task ended, or its hour is over: steps/running_on.py), and is never due again.
-- Returns {moved (0/1), status before ('' = no job), lock taken (0/1), the value of spec.take (false: none), the work
-- taken at once for RQ (effects.apply), the record read back (false: not asked), a slot given back (0/1)}.
local job, due, outbox_key = KEYS[1], KEYS[2], KEYS[3]
local spec = cjson.decode(ARGV[1])
local new = spec.to

-- Something for a notifier in the outbox: outbox.lua wakes one (spec.notify_added, a wake-up list: store/wakes.py).
local notify_added = KEYS[spec.notify_added]

-- What this step reads of the record, each field once.
local asked, at = {}, {}
local function ask(name)
  if not at[name] then
    asked[#asked + 1] = name
    at[name] = #asked
  end
end
ask('status')
if spec.if_equal then ask(spec.if_equal[1]) end
for i = 1, #(spec.if_same or {}), 2 do ask(spec.if_same[i]) end
for i = 1, #(spec.announce or {}), 2 do ask(spec.announce[i]) end
if spec.count then ask(spec.count) end
local progress, cost
for i = 1, #spec.fields, 2 do
  if spec.fields[i] == 'progress' then progress = spec.fields[i + 1] end
  if spec.fields[i] == 'cost_credits' then cost = spec.fields[i + 1] end
end
if progress or new == 'submitted' then ask('notify_events') end
if progress then ask('progress') end
if spec.slots or spec.lines then ask('pool') end
if spec.bfl or (spec.terminal and spec.lives) then ask('created_at') end
if spec.take then ask(spec.take.flag) end
if spec.watched then ask(spec.watched.field) end
-- A job in line is its owner's member there: its app key's, or the admin owner's, ranked by its deadline (members.lua).
if spec.lines then
  ask('key_id')
  ask('deadline')
  ask('end_user')
end
-- A batch item's moves and charge are its batch's counts (spec.batch_counts, batch_counts.lua).
ask('batch_id')
if cost then ask('cost_credits') end
if spec.terminal then
  ask('notify_url')
  ask('app_webhook_url')
  ask('route')
  ask('deadline')
end
-- A work line's effect for this very job takes its owner from this read.
local works_here = false
for _, effect in ipairs(spec.effects or {}) do
  works_here = works_here or (effect.work ~= nil and KEYS[effect.record] == job)
end
if works_here then
  ask('key_id')
  ask('deadline')
  ask('end_user')
end
-- What it may drop: only those it has are named in its HDEL, and none at all costs no command.
for _, names in ipairs({spec.clear or {}, spec.unset or {}, spec.terminal and spec.drop or {}}) do
  for _, name in ipairs(names) do ask(name) end
end
-- A step that answers with the record (spec.read_back) or may end the job reads all of it at once instead: what it
-- asks is in that read, and the record as the step leaves it is that read with the step's writes made (``whole``,
-- ``as_left``), not a read again after them.
local read, whole
if spec.read_back or spec.terminal then
  whole = {}
  local all = redis.call('HGETALL', job)
  for i = 1, #all, 2 do whole[all[i]] = all[i + 1] end
  read = {}
  for i, name in ipairs(asked) do read[i] = whole[name] or false end
else
  read = redis.call('HMGET', job, unpack(asked))
end
local function kept(name) return read[at[name]] end
-- When the record's life ends as it was made to live (spec.lives after created_at), or nil: a life none, or one that
-- reads as over by this clock (ahead of the one that made the record); then the record's own TTL is asked instead.
local function life_end()
  local made = tonumber(kept('created_at'))
  if spec.lives and made and made + spec.lives > tonumber(spec.now) then return made + spec.lives end
  return nil
end

local current = kept('status')
if not current then return {0, '', 0, false} end
local allowed = false
for _, status in ipairs(spec.from) do
  if status == current then allowed = true end
end
if not allowed then return {0, current, 0, false} end
if spec.if_equal then
  -- The field, then each way its value may be kept (sealed by each key of a rotation, or as it is).
  local value, found = kept(spec.if_equal[1]) or '', false
  for i = 2, #spec.if_equal do found = found or value == spec.if_equal[i] end
  if not found then return {0, current, 0, false} end
end
if spec.if_same then
  -- Fields as they read when the change was worked out from them (a running job's word and progress, which
  -- never go backwards): changed meanwhile, nothing is written and the caller works it out again.
  for i = 1, #spec.if_same, 2 do
    if (kept(spec.if_same[i]) or '') ~= spec.if_same[i + 1] then return {0, current, 0, false} end
  end
end

local locked = 0
if spec.lock and redis.call('SET', KEYS[spec.lock.key], spec.lock.value, 'NX', 'EX', spec.lock.ttl) then
  locked = 1
end
local events = kept('notify_events') or ''
-- A job whose notifications ask for its progress (its record's notify_events) has a job.progress in the outbox
-- when its progress changes: one member per job, however many changes come before the sweep takes it.
if progress and progress ~= '' and string.find(events, 'job.progress', 1, true) and kept('progress') ~= progress then
  outbox.add(outbox_key, notify_added, spec.now, spec.id .. '|job.progress', true)
end
local announce = false
for i = 1, #(spec.announce or {}), 2 do
  announce = announce or (kept(spec.announce[i]) or '') ~= spec.announce[i + 1]
end

local moving = new ~= '' and new ~= current
-- Ending with its slot kept (spec.hold): only a job BFL has (a ready one gave its slot back as BFL finished) and that
-- holds one (a tracked task never took one).
local holding = moving and spec.hold and current == 'submitted'
  and redis.call('HEXISTS', KEYS[spec.holders], spec.id) == 1
local keeps = {}
for _, name in ipairs(holding and spec.hold.keeps or {}) do keeps[name] = true end
-- Gives the job's slot back (``held``: its holder's entry, which names the slot's account, and the owner and charge of
-- the turn that took it, see slots_prelude.lua; ``pool``: its record's): charged the time it held it, and ``ran``:
-- its task ran at BFL, so that time teaches its pool's estimate. Whether a slot was freed.
local function give_back(held, pool, ran)
  local account, holder, charged, taken_at, weight, mark = slot_holders.parse(held)
  if not account then return false end
  local freed = false
  -- Its slot is its account's, in its pool's slots; else in another of that account's pools (a pool renamed).
  local its = spec.slots[account] or {}
  local order = {its[pool]}
  for _, key in pairs(its) do
    if key ~= its[pool] then order[#order + 1] = key end
  end
  for _, key in ipairs(order) do
    -- When it took the slot: its entry says (an entry of an older release does not: the slot's score).
    local taken = not freed and (taken_at or redis.call('ZSCORE', KEYS[key], spec.id))
    if taken and redis.call('ZREM', KEYS[key], spec.id) == 1 then
      freed = true
      slot_counts.freed(KEYS[spec.slot_counts], KEYS[key])
      local f = {passes = KEYS[spec.fair.passes], weights = KEYS[spec.fair.weights],
                 default_weight = spec.fair.default_weight}
      slot_time.settle(f, KEYS[key], holder, charged, math.max(0, tonumber(spec.now) - tonumber(taken)), ran, weight,
                       mark)
    end
  end
  redis.call('HDEL', KEYS[spec.holders], spec.id)
  if freed and redis.call('HINCRBY', KEYS[spec.held], holder, -1) <= 0 then
    redis.call('HDEL', KEYS[spec.held], holder)
  end
  -- Wakes one worker's dispatcher if a job waits in a line for the slot (one item is enough to wake it, however many
  -- slots freed): with none in line, a dispatch would find nothing to give, at every job's end. A job that joins a
  -- line later finds the slot free as it joins (slots_acquire.lua).
  if freed and spec.freed then
    local lines = {}
    for i, key in ipairs(spec.freed.lines) do lines[i] = KEYS[key] end
    if redis.call('EXISTS', unpack(lines)) > 0 and redis.call('LPUSH', KEYS[spec.freed.key], 1) > 1 then
      redis.call('LTRIM', KEYS[spec.freed.key], 0, 0)
    end
  end
  return freed
end
local freed = false

-- A slot given back (spec.release) is no change of the ended job's own.
local write = spec.release and {} or {'updated_at', spec.now}
if moving then
  write[#write + 1] = 'status'
  write[#write + 1] = new
end
if spec.count then
  write[#write + 1] = spec.count
  write[#write + 1] = string.format('%d', (tonumber(kept(spec.count)) or 0) + 1)
end
local written = {}
for i = 1, #spec.fields, 2 do
  write[#write + 1], write[#write + 2] = spec.fields[i], spec.fields[i + 1]
  written[spec.fields[i]] = true
end
-- A job that ends is written anew as it ends (below): its writes and drops go with that.
local anew = moving and spec.terminal
if #write > 0 and not anew then redis.call('HSET', job, unpack(write)) end
-- The fields cleared, then (with the move) the wait it leaves and what an ended job keeps no longer: those it has.
local drop = {}
local function drop_kept(names)
  for _, name in ipairs(names or {}) do
    if (kept(name) or written[name]) and not keeps[name] then drop[#drop + 1] = name end
  end
end
drop_kept(spec.clear)
if spec.take then drop_kept({spec.take.flag}) end
if spec.bfl then
  -- The task's index lives as long as its record (life_end; none: for ever).
  local ends = life_end()
  local ttl = ends and math.ceil(ends - tonumber(spec.now)) or redis.call('TTL', job)
  if ttl > 0 then redis.call('SET', KEYS[spec.bfl.key], spec.id, 'EX', ttl)
  else redis.call('SET', KEYS[spec.bfl.key], spec.id) end
end

if moving then
  if new == 'submitted' and string.find(events, 'job.submitted', 1, true) then
    outbox.add(outbox_key, notify_added, spec.now, spec.id .. '|job.submitted', true)
  end
  redis.call('ZREM', KEYS[spec.statuses[current]], spec.id)
  redis.call('ZADD', KEYS[spec.statuses[new]], 0, spec.id)
  local pool = kept('pool') or ''
  -- A ready job gave its slot back with its move to ready. A job holding a slot is in no line (a turn takes
  -- it out of its line; a job given back leaves its slot first).
  -- Asked only when it matters: for the slot it gives back, or for the place in line a queued job may have (a job a
  -- dispatch gave a slot is in none, spec.out_of_line).
  local in_line = spec.lines and current == 'queued' and not spec.out_of_line
  local held = spec.holders and current ~= 'ready' and (spec.slots or in_line)
    and redis.call('HGET', KEYS[spec.holders], spec.id)
  if spec.slots and not holding then freed = give_back(held, pool, current == 'submitted') end
  if in_line and not held then
    local key_id = kept('key_id')
    local forms = {members.forms((key_id and key_id ~= '') and key_id or spec.admin, spec.id, kept('deadline'),
                                       kept('end_user'))}
    if spec.lines[pool] then
      redis.call('ZREM', KEYS[spec.lines[pool]], unpack(forms))
    else
      for _, key in pairs(spec.lines) do redis.call('ZREM', KEYS[key], unpack(forms)) end
    end
    redis.call('ZREM', KEYS[spec.aside], unpack(forms))
  end
  drop_kept(spec.unset)
  if spec.terminal then
    if spec.routes and kept('route') then redis.call('HDEL', KEYS[spec.routes], spec.id) end
    local notify_url, app_webhook = kept('notify_url'), kept('app_webhook_url')
    if (notify_url and notify_url ~= '') or (app_webhook and app_webhook ~= '') then
      outbox.add(outbox_key, notify_added, spec.now, spec.id, false)
    end
    drop_kept(spec.drop)
  end
  announce = true
  local batch = kept('batch_id')
  if batch and batch ~= '' then
    batch_counts.moved(KEYS[spec.batch_counts], batch, current, new, spec.terminal, spec.now, outbox_key, notify_added)
  end
elseif spec.release then
  freed = give_back(redis.call('HGET', KEYS[spec.holders], spec.id), kept('pool') or '', true)
end
if cost and kept('batch_id') and kept('batch_id') ~= '' then
  batch_counts.charged(KEYS[spec.batch_counts], kept('batch_id'), tonumber(cost) - (tonumber(kept('cost_credits')) or 0))
end
-- The record as the step leaves it (``whole``, its one read, with what the step wrote and without what it dropped), as
-- HGETALL's list.
local function as_left()
  for i = 1, #write, 2 do whole[write[i]] = write[i + 1] end
  for _, name in ipairs(drop) do whole[name] = nil end
  local flat = {}
  for name, value in pairs(whole) do
    flat[#flat + 1] = name
    flat[#flat + 1] = value
  end
  return flat
end
if #drop > 0 and not anew then redis.call('HDEL', job, unpack(drop)) end
if anew then
  -- A record that outgrew Redis's compact encoding (a long value: BFL's URLs, an input) keeps it, fields dropped or
  -- not: made anew as it now is, it takes a third of the memory for the rest of its days. Every record that ends has
  -- outgrown it but one ended before it held any of those (canceled in line with a short input), so the encoding is
  -- not asked, and the record is made anew from the step's one read rather than written, then dumped and restored.
  -- Its life ends where it was made to (life_end), so its TTL need not be read.
  local ends = life_end()
  local ttl = not ends and redis.call('PTTL', job)
  local left = as_left()
  redis.call('DEL', job)
  redis.call('HSET', job, unpack(left))
  if ends then redis.call('PEXPIREAT', job, math.floor(ends * 1000))
  elseif ttl > 0 then redis.call('PEXPIRE', job, ttl) end
end
if announce then redis.call('PUBLISH', spec.channel, spec.id) end
-- An ended job's deadline (Cancel-After) has nothing left to end.
if spec.terminal and spec.deadlines and kept('deadline') then redis.call('ZREM', KEYS[spec.deadlines], spec.id) end
local undue = (spec.terminal and not holding) or spec.release
if undue then redis.call('ZREM', due, spec.id) end
-- A lock that guarded the move is moot once it is made: freed without a look at whose it is.
if spec.unlock and (moving or redis.call('GET', KEYS[spec.unlock.key]) == spec.unlock.value) then
  redis.call('DEL', KEYS[spec.unlock.key])
end
local taken = spec.take and kept(spec.take.flag) and redis.call('GETDEL', KEYS[spec.take.key]) or false

-- The effects: only with a move, and only with the lock when one is named.
local handed = {}
if not spec.lock or locked == 1 then
  handed = effects.apply(spec.effects, works_here and {[job] = {kept('key_id'), moving and new or current, kept('batch_id'), kept('deadline'),
                                                          kept('end_user')}} or nil)
end
-- Its own work taken at once for RQ holds it due by that work's lease (work_moves.lua), which its due time would only
-- write again.
local leased = false
for i = 2, #handed, 2 do leased = leased or string.find(handed[i], spec.id, 1, true) ~= nil end
if spec.due and not undue and not leased then
  -- A job that ends keeping its slot is due for a poll of its task (steps/running_on.py): a check of it under way as
  -- it ended, which could not reschedule a job no longer submitted, leaves no hold of its own behind.
  local when = spec.due
  -- Watched (store/watching.py): its record's mark is later than now.
  if spec.watched and (tonumber(kept(spec.watched.field)) or 0) > tonumber(spec.now) then when = spec.watched.due end
  -- The first due: a sweeper at rest waits for it (spec.sweep_added, sweep_index.lua).
  sweep_index.add(due, KEYS[spec.sweep_added], when, spec.id)
end
return {1, current, locked, taken, handed, spec.read_back and as_left() or false, freed and 1 or 0}
