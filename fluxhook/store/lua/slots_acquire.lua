-- needs: slots_prelude, job_record, slots_waits, members, slots_accounts, queue_room
-- ARGV[rest...]: pool, job id, its owner, its route ('*': any account), whether it may take a slot now ('1'/'0'), its
-- owner's max_active as its caller read it ('': none of its own; '?': not read, so asked of Redis; then '|' and its
-- weight when the caller read that too), its member in the
-- line (store/owners.py's ``member``: a batch item's bulk form, ranked by its deadline), its owner's max_queued (the most
-- it may hold queued, queue_room.lua), its batch's id ('' none) and how long the room its batch holds lasts unused (s),
-- then, for a job made here, its record as job_record.lua makes it (the spec, its keys after K.after; the fields).
-- The job joins its owner's line in its pool. Taking: if it is then the one whose turn is next, it takes
-- the slot now, else it waits for a sender's dispatch to give it a turn. Not taking (its caller will not send it), it
-- only waits, and one sender is woken to look at the lines if an account has room in its pool.
-- Returns {the name of the account whose slot it took, false} or, when it waits, {false, what holds it back now
-- (slots_waits.state)}: the wait its maker answers with, read in this same step, where a job made here has it put
-- on its timeline (job_record.note_wait). A job to be made here whose owner has no room left for it under its
-- max_queued (queue_room.lua; a batch's item takes the room its batch holds) is not made: {false, false, {its jobs
-- queued, the room its batches hold, its limit}}, nothing written; one whose Idempotency-Key's hold is another
-- request's now (job_record.create) is not made either: {false, false, false, 'taken'}.
-- Made in the same step as its place: a queued job recorded is always in line or holding a slot (and then due),
-- whatever stops its maker after, a Redis turned replica or the process itself.
local s = slots_accounts.read()
local K, rest = s.K, s.rest
local pool, job, owner, route = s.by_name[ARGV[rest]], ARGV[rest + 1], ARGV[rest + 2], ARGV[rest + 3]
-- Slots past their lease are left to the dispatcher, which frees them every few seconds (a job in line is dispatched
-- once they are): a new job does not look for them.
slots_prelude.start(s, pool, true)
-- Its owner's limit, and weight, as its caller read them ('?': not read; 'cap|weight' with the weight).
local cap_word, weight_word = string.match(ARGV[rest + 5], '^([^|]*)|?(.*)$')
if cap_word ~= '?' then s.know_cap(owner, cap_word) end
if weight_word ~= '' then s.know_weight(owner, tonumber(weight_word)) end
local made, spec
if ARGV[rest + 10] then
  local limit, batch, lease = tonumber(ARGV[rest + 7]), ARGV[rest + 8], tonumber(ARGV[rest + 9])
  if batch == '' or not queue_room.take_held(K, owner, batch, s.now, lease) then
    local lines = {}
    for _, each in ipairs(s.pools) do lines[#lines + 1] = each.line end
    local full = queue_room.full(K, lines, owner, 1, limit, s.now)
    if full then return {false, false, full} end
  end
  made, spec = job_record.create(rest + 10, K.after)
  if not made then return {false, false, false, 'taken'} end
  if made ~= job then
    return redis.error_reply('slots_acquire: a job made with its place in line is a new one, tracking no task')
  end
end
if route ~= '*' then redis.call('HSET', s.route_index, job, route) end
s.route_of[job] = route
local item, taking = ARGV[rest + 6], ARGV[rest + 4] == '1'
local open = #s.open_in(pool) > 0
-- A job that may take a slot of a pool with room, while no line holds a job, has its turn read without joining its
-- line first (which it would leave at once): one EXISTS of every line in place of its ZADD, the read of its line and
-- the ZREM. It joins its line only if it waits.
local listed = true
if taking and open then
  local lines = {}
  for i, each in ipairs(s.pools) do lines[i] = each.line end
  if redis.call('EXISTS', unpack(lines)) == 0 then
    s.alone(pool, owner, job, item)
    listed = false
  end
end
if listed then redis.call('ZADD', pool.line, 0, item) end
-- A sender is woken only when the pool has room: else a freed slot wakes one, and a dispatch now would find nothing
-- to give (a backlog posted all together would cost a dispatch per job). Or when a timer may hold the job back (a
-- cooldown, a pause: s.on_timer, read as the pool's room was), whose end pushes nothing: a dispatcher at rest learns
-- of it so, and waits it out on its own.
local function wake()
  if redis.call('LPUSH', K.slot_freed, 1) > 1 then redis.call('LTRIM', K.slot_freed, 0, 0) end
end
if not taking then
  if open or s.on_timer then wake() end
else
  if open then
    -- Its pool has room: whose turn it is decides (a turn of another pool may come first at an account's
    -- max_active). Without room, none is its: the lines are not read.
    local turn = s.pick()
    if turn and turn.job == job then
      s.serve(turn)
      return {turn.account.name, false}
    end
  end
  if not listed then redis.call('ZADD', pool.line, 0, item) end
  if s.on_timer then wake() end
end
local line = slots_waits.state(s, pool.name, owner, route)
-- Storage holding batch items back holds no single job: the state is this job's own.
if line[8] == 'bulk' and not members.is_bulk(item) then line[8], line[9] = '', '' end
if spec then job_record.note_wait(spec, K.after, line) end
return {false, line}
