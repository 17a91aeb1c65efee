-- needs: fair_turns
-- Admits a submission against one or more credit limits (the account's daily limit, an app key's, a BFL
-- account's) and reserves for it in each, in one step, so that no number of processes can together pass a
-- limit by more than one job's price. For each limit, the day's spend plus every live reservation stays
-- within the limit, but for one submission "sent alone":
--
-- * A submission whose bound (the most its request can cost) fits in what is left, the limit less the
--   spend and the others' reservations, reserves its bound.
-- * One with no bound, or a bound larger than what is left, goes alone while credits remain: it reserves
--   everything left, so that nothing else goes until BFL has stated its price.
-- * Nothing is left (the spend, or the spend and the bounded reservations, reach the limit): refused (0).
--   While a submission sent alone is out, any other waits (2): what it costs is not known.
-- * A job that already holds a live reservation in a limit keeps it, and is admitted while the day's
--   spend is below the limit.
--
-- Going alone is fair: the jobs that must go alone take turns between owners as slots do.
-- * Each one that waits records itself ('<deadline> 0 waits <owner>'). Of those, the next to go alone is
--   the leader: its owner is the one whose turn comes first (fair_turns.lua: each owner's go-alone sends
--   cost it 1 / its weight, in the limit's own passes and clock), and within an owner the oldest job. Only
--   the leader goes alone, once no reservation is live; the others wait, holding back their own owner's
--   later jobs only (an owner's jobs keep their order).
-- * A boundable job is held only by a send that is out alone (its price is unknown), by its own owner's
--   older job waiting to go alone, or by the leader's gate. The leader closes its gate when it looks with no
--   send out alone and must wait for others (a reservation live, or a boundable job that began waiting
--   before): from then, another owner's boundable job that begins waiting after the gate waits for the
--   leader to go alone and settle; one that began waiting before goes first, and the leader waits for it.
--   A boundable job that waits so records itself with its place ('<deadline> 0 next <owner> <seq>', seq
--   from the limit's counter), and the leader's gate is the counter when it closed ('~head' in the turns).
-- So a stream of boundable jobs cannot hold the leader back (those after its gate wait for it), and a queue
-- of go-alone jobs delays another owner's boundable job by at most one send alone: the one out when it
-- came, or the leader whose gate had closed. A new leader (after a send alone, or another owner's turn)
-- starts with its gate open. A job that waits is not refused while credits remain. Its record goes when
-- it is admitted (its reservation takes its place), refused, released with its job, when it waits only
-- for another limit (where it would hold others back for a limit they do not share), or at its deadline,
-- so one whose job vanished stops holding the others back.
--
-- Reservations and records past their deadline belonged to submissions that died; they are dropped here.
--
-- KEYS, per limit i (1-based): KEYS[3i-2] the hash holding the day's spend, KEYS[3i-1] the limit's
--       reservations (job id -> '<deadline ms> <micro-credits>', with ' alone' for one sent alone, or a
--       record of waiting, as above), KEYS[3i] its turns (owner -> pass; '~clock' its clock, fair_turns.lua;
--       '~head' the leader and its gate, '<job id> <gate>'; '~seq' the counter); then KEYS[#KEYS] the owners' weights.
-- ARGV[1] the job id, ARGV[2] now (ms), ARGV[3] how long a reservation lives (ms), ARGV[4] the request's
--       bound in micro-credits, or -1 for none, ARGV[5] '1' to only say what would be decided, reserving
--       and recording nothing (the operator's view), '2' to record a wait as it would, but reserve nothing when
--       it would admit (a job waiting aside looks again: it reserves when it is sent, and a live reservation of
--       the same job, a send of it under way, is never touched), ARGV[6] how long a record of waiting to go alone lives
--       (ms), ARGV[7] how long a boundable job's record of waiting lives (ms), ARGV[8] the job's owner,
--       ARGV[9] the owner of a record that names none, ARGV[10] the weight of an owner that has none set;
--       then per limit i: ARGV[9+2i] the limit (micro-credits), ARGV[10+2i] the spend's field in KEYS[3i-2].
-- Returns {state (1 admitted, 0 refused, 2 wait for the others to settle: a refusal by any limit outweighs
-- a wait in another), the limit (1-based) that decided, its day's spend, credits reserved there by others,
-- what this job holds in the first limit (0 unless admitted), 1 if it waits there for its turn to go alone
-- (0: a boundable job, which waits for one send alone at most)}.
local job, now, lease, bound = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local dry, looks, waiting_lease, next_lease = ARGV[5] == '1', ARGV[5] == '2', tonumber(ARGV[6]), tonumber(ARGV[7])
local owner, unnamed, default_weight = ARGV[8], ARGV[9], tonumber(ARGV[10])
local count = (#KEYS - 1) / 3
local weights = KEYS[#KEYS]

-- One value of a limit's hash: {deadline, amount, kind ('', 'alone', 'waits', 'next'), owner, seq}, or nil.
local function parse(value)
  local deadline, amount, rest = string.match(value, '^(%d+) (%d+)(.*)$')
  if not deadline then return nil end
  local kind, who, seq = string.match(rest, '^ (%a+) ?([^ ]*) ?(%d*)$')
  return {deadline = tonumber(deadline), amount = tonumber(amount), kind = kind or '',
          owner = (who and who ~= '') and who or unnamed, seq = tonumber(seq)}
end

-- What limit i holds: live reservations, the records of waiting, and this job's own.
local function read_limit(i)
  local s = {held_key = KEYS[3 * i - 1], others = 0, live = 0, alone = false, alone_held = 0, heads = {}, nexts = {}}
  local held = redis.call('HGETALL', s.held_key)
  for n = 1, #held, 2 do
    local id, r = held[n], parse(held[n + 1])
    if not r or r.deadline <= now then
      redis.call('HDEL', s.held_key, id)
    elseif r.kind == 'waits' or r.kind == 'next' then
      if id == job then
        s.record = r
      elseif r.kind == 'next' then
        s.nexts[#s.nexts + 1] = {job = id, owner = r.owner, seq = r.seq or 0}
      else
        if r.owner == owner and (s.own_oldest == nil or id < s.own_oldest) then s.own_oldest = id end
        if s.heads[r.owner] == nil or id < s.heads[r.owner] then s.heads[r.owner] = id end
      end
    elseif id == job then
      s.mine = held[n + 1]
    else
      s.others, s.live = s.others + r.amount, s.live + 1
      if r.kind == 'alone' then s.alone, s.alone_held = true, s.alone_held + r.amount end
    end
  end
  s.spent = tonumber(redis.call('HGET', KEYS[3 * i - 2], ARGV[10 + 2 * i]) or '0')
  s.limit = tonumber(ARGV[9 + 2 * i])
  s.left = s.limit - s.spent - s.others
  -- It must go alone: no bound, or one larger than what is left (were the one sent alone free).
  s.must = not s.mine and (bound < 0 or bound > s.left + s.alone_held)
  return s
end

-- The leader of limit i's jobs waiting to go alone (this job among them when it must go alone), and its gate:
-- of each owner's head (its oldest job waiting to go alone), the one whose turn comes first.
local function find_leader(i, s)
  s.turns_key = KEYS[3 * i]
  s.turns = fair_turns.new(s.turns_key, weights, default_weight)
  local heads = {}
  if s.must and (s.heads[owner] == nil or job < s.heads[owner]) then s.heads[owner] = job end
  for who, id in pairs(s.heads) do heads[#heads + 1] = {owner = who, job = id} end
  s.leader = s.turns.earliest(heads)
  s.seq = tonumber(redis.call('HGET', s.turns_key, '~seq') or '0')
  local stored, gate = string.match(redis.call('HGET', s.turns_key, '~head') or '', '^(%S+) (%d+)$')
  s.stale = stored ~= nil and (s.leader == nil or stored ~= s.leader.job)
  if s.leader and stored == s.leader.job then s.gate = tonumber(gate) end
end

-- Whether a boundable job that began waiting before the leader's gate (or before now, were it closed now) is
-- still to go: the leader waits for it, unless it is a later job of the leader's own owner (behind the leader).
local function preceded(s)
  local gate = s.gate or (s.seq + 1)
  for _, next in ipairs(s.nexts) do
    if next.seq < gate and not (next.owner == s.leader.owner and next.job > s.leader.job) then return true end
  end
  return false
end

-- Limit i's word: state (1, 0, 2), the record it keeps ('keep', 'bound', 'alone', 'waits', 'next' or nil),
-- and whether the leader closes its gate.
local function decide(s)
  -- A boundable job behind its own owner's older job waiting to go alone keeps no record: it goes after it.
  local behind = s.own_oldest ~= nil and s.own_oldest < job
  if s.mine then
    if s.spent >= s.limit then return 0 end
    return 1, 'keep'
  elseif s.spent >= s.limit then
    return 0
  elseif s.alone then
    return 2, (s.must and 'waits') or (not behind and 'next') or nil
  elseif s.left <= 0 and not s.record then
    return 0
  elseif s.must then
    if s.leader.job ~= job then return 2, 'waits' end
    if s.live > 0 or preceded(s) then return 2, 'waits', true end
    return 1, 'alone'
  elseif behind then
    return 2
  end
  local mine = (s.record and s.record.kind == 'next' and s.record.seq) or math.huge
  if s.leader and s.leader.owner ~= owner and s.gate and mine > s.gate then return 2, 'next' end
  return 1, 'bound'
end

-- Waiting: its record where this limit holds it, none where only another limit does.
local function record_wait(s, state, kind, closes)
  if state == 2 and kind then
    local deadline = now + (kind == 'waits' and waiting_lease or next_lease)
    local value = string.format('%.0f 0 waits %s', deadline, owner)
    if kind == 'next' then
      local seq = (s.record and s.record.kind == 'next' and s.record.seq)
        or redis.call('HINCRBY', s.turns_key, '~seq', 1)
      value = string.format('%.0f 0 next %s %d', deadline, owner, seq)
    end
    redis.call('HSET', s.held_key, job, value)
    if redis.call('PTTL', s.held_key) < waiting_lease then redis.call('PEXPIRE', s.held_key, waiting_lease) end
  elseif s.record then
    redis.call('HDEL', s.held_key, job)
  end
  if closes and not s.gate then
    redis.call('HSET', s.turns_key, '~head', s.leader.job .. ' ' .. redis.call('HINCRBY', s.turns_key, '~seq', 1))
  end
end

local states, decided, first = {}, nil, {0, 0}
for i = 1, count do
  local s = read_limit(i)
  find_leader(i, s)
  s.state, s.kind, s.closes = decide(s)
  states[i] = s
  if i == 1 then first = {s.spent, s.others} end
  -- Every limit is asked: a refusal by any (its key's day spent) outweighs a wait in another, so a job
  -- that cannot go today records no wait that would hold other keys' jobs behind it.
  if s.state == 0 and (decided == nil or decided[1] == 2) then
    decided = {0, i, s.spent, s.others, 0, 0}
  elseif s.state == 2 and decided == nil then
    decided = {2, i, s.spent, s.others, 0, s.must and 1 or 0}
  end
end

if dry then
  return decided or {1, 0, first[1], first[2], 0, 0}
end
for i = 1, count do
  local s = states[i]
  if s.stale then redis.call('HDEL', s.turns_key, '~head') end  -- a new leader starts with its gate open
  redis.call('PEXPIRE', s.turns_key, lease)
end
if decided then
  for i = 1, count do
    local s = states[i]
    if decided[1] == 2 and job ~= '' then
      record_wait(s, s.state, s.kind, s.closes)
    elseif s.record then
      redis.call('HDEL', s.held_key, job)  -- refused: it waits no more
    end
  end
  return decided
end
if looks then
  return {1, 0, first[1], first[2], 0, 0}
end
local amount = 0
for i = 1, count do
  local s = states[i]
  local value
  if s.kind == 'keep' then
    value = string.gsub(s.mine, '^%d+', string.format('%.0f', now + lease))
  elseif s.kind == 'alone' then
    -- alone: everything left, so that nothing else goes until its price is known; its owner's turn is taken
    value = string.format('%.0f %.0f alone', now + lease, s.left)
    s.turns.charge(owner, 1)
    redis.call('HDEL', s.turns_key, '~head')
  else
    value = string.format('%.0f %.0f', now + lease, bound)
  end
  redis.call('HSET', s.held_key, job, value)
  redis.call('PEXPIRE', s.held_key, lease)
  redis.call('PEXPIRE', s.turns_key, lease)
  if i == 1 then amount = tonumber(string.match(value, '^%d+ (%d+)')) end
end
return {1, 0, first[1], first[2], amount, 0}
