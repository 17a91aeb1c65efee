-- One new job of an app key's end user against what the key set for it (its defaults and the end user's own
-- record), checked and taken in one step, so that no number of processes together passes a limit: its block of the
-- day (by an admin, or its jobs BFL moderated as many times today as the key's moderation limit), its
-- requests_per_minute (a sliding window, as app_key_take_request.lua's) and its max_queued (its jobs made and not
-- pruned; a refusal names them, so the caller prunes those that left the line and asks again). Judged before
-- anything is taken, so a refusal counts nothing.
--
-- KEYS[1] the key's end users' records (end user -> JSON: limits, blocked day, lifted), KEYS[2] today's counters of
-- the key's end users, KEYS[3] the end user's submissions of the last window, KEYS[4] its queued jobs.
-- ARGV[1] the end user, ARGV[2] now (ms), ARGV[3] the window (ms), ARGV[4] a member unique to this request,
-- ARGV[5] the job's id, ARGV[6] today (YYYY-MM-DD), ARGV[7] the key's moderation limit (0: none),
-- ARGV[8] its default requests_per_minute (0: none), ARGV[9] its default max_queued (0: none), ARGV[10] how long the
-- queued ids are kept after the last is added (ms).
-- Returns {verdict, figure, the end user's record ('' for none)}: verdict 0 taken; 1 blocked by hand; 2 blocked for
-- moderation (figure: its moderated jobs today); 3 rate limited (figure: ms until one leaves the window); 4 its queue
-- is full (figure: its limit), then its queued ids follow.
local end_user, now, window, member, job = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
local day, moderation = ARGV[6], tonumber(ARGV[7])
local raw = redis.call('HGET', KEYS[1], end_user)
local record = raw and cjson.decode(raw) or {}
local limits = record.limits or {}
raw = raw or ''

if record.blocked == day then return {1, 0, raw} end
if moderation > 0 then
  local moderated = tonumber(redis.call('HGET', KEYS[2], end_user .. ':moderated') or '0')
  -- An unblock forgives the moderations counted until then; the next ones count towards the limit again.
  local lifted = (type(record.lifted) == 'table' and record.lifted[1] == day) and tonumber(record.lifted[2]) or 0
  if moderated - lifted >= moderation then return {2, moderated, raw} end
end

local rate = tonumber(limits.requests_per_minute) or tonumber(ARGV[8])
if rate > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - window)
  if redis.call('ZCARD', KEYS[3]) >= rate then
    local oldest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
    return {3, math.min(window, math.max(1, tonumber(oldest[2]) + window - now)), raw}
  end
end
local queue = tonumber(limits.max_queued) or tonumber(ARGV[9])
if queue > 0 and redis.call('ZCARD', KEYS[4]) >= queue then
  local refused = {4, queue, raw}
  for _, id in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do refused[#refused + 1] = id end
  return refused
end

if rate > 0 then
  redis.call('ZADD', KEYS[3], now, member)
  redis.call('PEXPIRE', KEYS[3], window)
end
if queue > 0 then
  redis.call('ZADD', KEYS[4], now, job)
  redis.call('PEXPIRE', KEYS[4], tonumber(ARGV[10]))
end
return {0, 0, raw}
