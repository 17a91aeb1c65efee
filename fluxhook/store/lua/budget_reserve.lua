-- Admits a submission against one or more credit limits (the account's daily limit, an app key's)
-- and reserves for it in each, in one step, so that no number of processes can together pass a
-- limit by more than one job's price. For each limit, the day's spend plus every live reservation
-- stays within the limit, but for one submission "sent alone":
--
-- * A submission whose bound (the most its request can cost) fits in what is left, the limit less
--   the spend and the others' reservations, reserves its bound.
-- * One with no bound, or a bound larger than what is left, goes alone while credits remain: only
--   when no other reservation of that limit is live, and it then reserves everything left, so that
--   nothing else goes until BFL has stated its price. If others are live it waits (state 2).
-- * Nothing is left (the spend, or the spend and the bounded reservations, reach the limit):
--   refused (0). While a submission sent alone is out, any other waits (state 2): what it costs
--   is not known, so credits may remain.
-- * A job that already holds a live reservation in a limit (made when its request came in) was
--   counted within that limit then: it keeps it, and is admitted while the day's spend is below
--   the limit.
-- * No starvation: one that must go alone and waits records itself in that limit as waiting to go
--   alone ('<deadline> 0 waits', the deadline renewed at each of its looks). While any job waits so,
--   a submission of a later job (job ids sort by creation) holding no reservation there waits too,
--   even one that would fit: nobody takes a new reservation, the live ones settle, and the oldest
--   one waiting goes alone at its next look. A job that waits so is not refused while credits
--   remain: it waits for the reservations that fill the limit to settle. Its record goes when it is
--   admitted (its reservation takes its place) or refused, with its job (as a reservation does), or
--   at its deadline, so one whose job vanished stops holding the others back.
--
-- Reservations and records past their deadline belonged to submissions that died; they are dropped here.
--
-- KEYS, per limit i (1-based): KEYS[2i-1] the hash holding the day's spend, KEYS[2i] the limit's
--       reservations (job id -> '<deadline ms> <micro-credits>', with ' alone' for one sent alone,
--       or '<deadline ms> 0 waits' for a job waiting to go alone).
-- ARGV[1] the job id, ARGV[2] now (ms), ARGV[3] how long a reservation lives (ms), ARGV[4] the
--       request's bound in micro-credits, or -1 for none, ARGV[5] '1' to only say what would be
--       decided, reserving and recording nothing (the operator's view), ARGV[6] how long a record of
--       waiting to go alone lives (ms); then per limit i: ARGV[5+2i] the limit (micro-credits),
--       ARGV[6+2i] the spend's field in KEYS[2i-1].
-- Returns {state (1 admitted, 0 refused, 2 wait for the others to settle: a refusal by any limit
-- outweighs a wait in another), the limit (1-based) that decided, its day's spend, credits reserved there by others, what this job holds in the
-- first limit (0 unless admitted)}.
local job, now, lease, bound = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local dry, waiting_lease = ARGV[5] == '1', tonumber(ARGV[6])
local count = #KEYS / 2
local records, must_wait, waiting, decided = {}, {}, {}, nil
local first = {0, 0}

for i = 1, count do
  local held_key = KEYS[2 * i]
  local limit = tonumber(ARGV[5 + 2 * i])
  local others, live, alone, alone_held, mine, oldest = 0, 0, false, 0, nil, nil
  local held = redis.call('HGETALL', held_key)
  for n = 1, #held, 2 do
    local id = held[n]
    local deadline, amount, kind = string.match(held[n + 1], '^(%d+) (%d+)(.*)$')
    deadline, amount = tonumber(deadline), tonumber(amount)
    if not deadline or deadline <= now then
      redis.call('HDEL', held_key, id)
    elseif kind == ' waits' then
      if id == job then
        waiting[i] = true
      elseif oldest == nil or id < oldest then
        oldest = id
      end
    elseif id == job then
      mine = held[n + 1]
    else
      others, live = others + amount, live + 1
      if kind == ' alone' then alone, alone_held = true, alone_held + amount end
    end
  end
  local spent = tonumber(redis.call('HGET', KEYS[2 * i - 1], ARGV[6 + 2 * i]) or '0')
  if i == 1 then first = {spent, others} end
  local left = limit - spent - others
  -- It must go alone: no bound, or one larger than what is left (were the one sent alone free).
  local must = not mine and (bound < 0 or bound > left + alone_held)
  local state, record = 1, nil
  if mine then
    if spent >= limit then state = 0 else record = string.gsub(mine, '^%d+', string.format('%.0f', now + lease)) end
  elseif spent >= limit then
    state = 0
  elseif alone then
    state = 2
  elseif left <= 0 and not waiting[i] then
    state = 0
  elseif oldest and oldest < job then
    state = 2  -- behind an older job waiting to go alone
  elseif not must then
    record = string.format('%.0f %.0f', now + lease, bound)
  elseif live == 0 then
    -- alone: everything left, so that nothing else goes until its price is known
    record = string.format('%.0f %.0f alone', now + lease, left)
  else
    state = 2
  end
  must_wait[i] = must
  -- Every limit is asked: a refusal by any (its key's day spent) outweighs a wait in another, so a job
  -- that cannot go today records no wait that would hold other keys' jobs behind it.
  if state == 0 and (decided == nil or decided[1] == 2) then
    decided = {state, i, spent, others, 0}
  elseif state == 2 and decided == nil then
    decided = {state, i, spent, others, 0}
  end
  records[i] = record
end

if dry then
  return decided or {1, 0, first[1], first[2], 0}
end
if decided then
  -- Waiting, it records (or renews) its wait to go alone where it must go alone; refused, it waits no more.
  for i = 1, count do
    if decided[1] == 2 and must_wait[i] and job ~= '' then
      redis.call('HSET', KEYS[2 * i], job, string.format('%.0f 0 waits', now + waiting_lease))
      if redis.call('PTTL', KEYS[2 * i]) < waiting_lease then redis.call('PEXPIRE', KEYS[2 * i], waiting_lease) end
    elseif waiting[i] then
      redis.call('HDEL', KEYS[2 * i], job)
    end
  end
  return decided
end
for i = 1, count do
  redis.call('HSET', KEYS[2 * i], job, records[i])
  redis.call('PEXPIRE', KEYS[2 * i], lease)
end
return {1, 0, first[1], first[2], tonumber(string.match(records[1], '^%d+ (%d+)'))}
