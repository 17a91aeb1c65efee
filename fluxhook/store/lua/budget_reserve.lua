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
--
-- Reservations past their deadline belonged to submissions that died; they are dropped here.
--
-- KEYS, per limit i (1-based): KEYS[2i-1] the hash holding the day's spend, KEYS[2i] the limit's
--       reservations (job id -> '<deadline ms> <micro-credits>', with ' alone' for one sent alone).
-- ARGV[1] the job id, ARGV[2] now (ms), ARGV[3] how long a reservation lives (ms), ARGV[4] the
--       request's bound in micro-credits, or -1 for none, ARGV[5] '1' to only say what would be
--       decided, reserving nothing (the operator's view); then per limit i: ARGV[4+2i] the limit
--       (micro-credits), ARGV[5+2i] the spend's field in KEYS[2i-1].
-- Returns {state (1 admitted, 0 refused, 2 wait for the others to settle), the limit (1-based)
-- that decided, its day's spend, credits reserved there by others, what this job holds in the
-- first limit (0 unless admitted)}.
local job, now, lease, bound = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local count = #KEYS / 2
local records, decided = {}, nil
local first = {0, 0}

for i = 1, count do
  local held_key = KEYS[2 * i]
  local limit = tonumber(ARGV[4 + 2 * i])
  local others, live, alone, mine = 0, 0, false, nil
  local held = redis.call('HGETALL', held_key)
  for n = 1, #held, 2 do
    local deadline, amount, kind = string.match(held[n + 1], '^(%d+) (%d+)(.*)$')
    deadline, amount = tonumber(deadline), tonumber(amount)
    if not deadline or deadline <= now then
      redis.call('HDEL', held_key, held[n])
    elseif held[n] == job then
      mine = held[n + 1]
    else
      others, live = others + amount, live + 1
      if kind == ' alone' then alone = true end
    end
  end
  local spent = tonumber(redis.call('HGET', KEYS[2 * i - 1], ARGV[5 + 2 * i]) or '0')
  if i == 1 then first = {spent, others} end
  local left = limit - spent - others
  local state, record = 1, nil
  if mine then
    if spent >= limit then state = 0 else record = string.gsub(mine, '^%d+', string.format('%.0f', now + lease)) end
  elseif spent >= limit then
    state = 0
  elseif alone then
    state = 2
  elseif left <= 0 then
    state = 0
  elseif bound >= 0 and bound <= left then
    record = string.format('%.0f %.0f', now + lease, bound)
  elseif live == 0 then
    -- alone: everything left, so that nothing else goes until its price is known
    record = string.format('%.0f %.0f alone', now + lease, left)
  else
    state = 2
  end
  if state ~= 1 then
    decided = {state, i, spent, others, 0}
    break
  end
  records[i] = record
end

if decided then return decided end
if ARGV[5] == '1' then return {1, 0, first[1], first[2], 0} end
for i = 1, count do
  redis.call('HSET', KEYS[2 * i], job, records[i])
  redis.call('PEXPIRE', KEYS[2 * i], lease)
end
return {1, 0, first[1], first[2], tonumber(string.match(records[1], '^%d+ (%d+)'))}
