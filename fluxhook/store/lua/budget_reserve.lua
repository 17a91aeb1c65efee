-- Admits a submission against the daily credit limit and reserves its estimated cost, in one step,
-- so that two processes can never both pass the last credit. A submission is admitted while the
-- day's spend and every other live reservation stay below the limit. A job that already holds a
-- live reservation (made when its request came in) was counted within the limit then: it is
-- admitted again while the day's spend alone is below the limit, and keeps its reservation either
-- way (refused, it waits for the next day). Reservations past their deadline belonged to
-- submissions that died; they are dropped here.
--
-- KEYS[1] today's usage counters, KEYS[2] yesterday's, KEYS[3] the reservations
--         (job id -> '<deadline ms> <micro-credits>').
-- ARGV[1] the job id, ARGV[2] the limit (micro-credits), ARGV[3] the estimate when the model has no
--         price yet, ARGV[4] the day's spend field, ARGV[5] the model's credits field, ARGV[6] its
--         jobs field, ARGV[7] now (ms), ARGV[8] how long a reservation lives (ms), ARGV[9] '1' to
--         only say whether the job would be admitted, reserving nothing (the operator's view).
-- Returns {admitted (0/1), the day's spend, credits reserved by others, this job's reservation (0 if refused)}.
local job, limit = ARGV[1], tonumber(ARGV[2])
local now, lease = tonumber(ARGV[7]), tonumber(ARGV[8])

local others, mine = 0, nil
local held = redis.call('HGETALL', KEYS[3])
for i = 1, #held, 2 do
  local deadline, amount = string.match(held[i + 1], '^(%d+) (%d+)$')
  deadline, amount = tonumber(deadline), tonumber(amount)
  if not deadline or deadline <= now then
    redis.call('HDEL', KEYS[3], held[i])
  elseif held[i] == job then
    mine = amount
  else
    others = others + amount
  end
end

local spent = tonumber(redis.call('HGET', KEYS[1], ARGV[4]) or '0')
-- The budget's rule, written here only: a submission goes while the day's spend and the others'
-- reservations stay below the limit. A holder's own reservation is already inside the limit, so the
-- others' cannot refuse it; but once the day's spend reaches the limit nothing goes.
if mine and spent >= limit then return {0, spent, others, 0} end
if not mine and spent + others >= limit then return {0, spent, others, 0} end
if ARGV[9] == '1' then return {1, spent, others, 0} end

-- What the model's tasks cost on average today (else yesterday): BFL tells a task's price only in
-- its answer to the submission.
local function average(key)
  local counts = redis.call('HMGET', key, ARGV[5], ARGV[6])
  local credits, jobs = tonumber(counts[1] or '0'), tonumber(counts[2] or '0')
  if credits > 0 and jobs > 0 then return math.ceil(credits / jobs) end
  return nil
end
local amount = mine or average(KEYS[1]) or average(KEYS[2]) or tonumber(ARGV[3])
redis.call('HSET', KEYS[3], job, string.format('%.0f %.0f', now + lease, amount))
redis.call('PEXPIRE', KEYS[3], lease)
return {1, spent, others, amount}
