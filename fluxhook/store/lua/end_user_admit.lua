-- A new job of an app key's end user, at its admission, against its end user's daily credits: admitted while the
-- day's spend and what its jobs admitted and not yet settled may cost stay below the limit, and then held for the
-- bound of its own price until it settles. A job reserves its price only when it is sent (budget_reserve.lua), so
-- without these holds a burst of an end user's jobs would all be admitted while none was sent yet, and wait for the
-- next day once the first had spent the day. One step over any number of web processes: of a burst, those admitted
-- are those one at a time would be, and the rest are refused at the door.
--
-- What a job not yet settled may cost: the larger of its hold here and its live reservation in the end user's
-- budget (a job of a batch, admitted without a hold, counts by its reservation alone). A hold whose deadline passed
-- belonged to a request or job that died: it is dropped.
--
-- KEYS[1] the hash of the day's spend, KEYS[2] the end user's reservations (budget_reserve.lua's values), KEYS[3] its
-- holds (job id -> '<deadline ms> <micro-credits>').
-- ARGV[1] the job id, ARGV[2] now (ms), ARGV[3] how long a hold lives (ms), ARGV[4] the job's bound (micro-credits;
-- 0 when the catalog cannot bound it: it goes alone when sent, refused only once nothing is left), ARGV[5] the limit
-- (micro-credits), ARGV[6] the spend's field in KEYS[1].
-- Returns {1 admitted or 0 refused, the day's spend, what the others not yet settled may cost}.
local job, now, lease, bound = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local limit = tonumber(ARGV[5])
local spent = tonumber(redis.call('HGET', KEYS[1], ARGV[6]) or '0')

local owed = {}
local holds = redis.call('HGETALL', KEYS[3])
for n = 1, #holds, 2 do
  local deadline, amount = string.match(holds[n + 1], '^(%d+) (%d+)$')
  if not deadline or tonumber(deadline) <= now then
    redis.call('HDEL', KEYS[3], holds[n])
  elseif holds[n] ~= job then
    owed[holds[n]] = tonumber(amount)
  end
end
local held = redis.call('HGETALL', KEYS[2])
for n = 1, #held, 2 do
  -- A reservation ('<deadline> <amount>', or ' alone'), not a record of waiting (' waits', ' next': nothing held).
  local deadline, amount, kind = string.match(held[n + 1], '^(%d+) (%d+) ?(%a*)')
  if deadline and tonumber(deadline) > now and (kind == '' or kind == 'alone') and held[n] ~= job then
    owed[held[n]] = math.max(owed[held[n]] or 0, tonumber(amount))
  end
end
local others = 0
for _, amount in pairs(owed) do others = others + amount end

if spent + others >= limit then return {0, spent, others} end
redis.call('HSET', KEYS[3], job, string.format('%.0f %.0f', now + lease, bound))
if redis.call('PTTL', KEYS[3]) < lease then redis.call('PEXPIRE', KEYS[3], lease) end
return {1, spent, others}
