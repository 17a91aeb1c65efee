-- A new job record with its indexes; for a BFL task already tracked, the id of the job tracking it.
--
-- KEYS[1] the job record, KEYS[2] every job's index, KEYS[3] its status's index, KEYS[4] the due
-- index, KEYS[5] the BFL task index of its bfl_id (any key when it has none); when the job has a
-- model, KEYS[6] that model's index and KEYS[7] the set of model names; when it has an app key,
-- the index of that key's jobs after them; when an Idempotency-Key's claim asked for the job, that
-- key's record and its caller's live keys last (see idempotency_begin.lua).
-- ARGV: job id, bfl id ('' = none), due time ('' = not due), TTL in s ('' = none),
--       '1' to take over the task index (its job is gone), the model ('' = none), the app key
--       ('' = none), and for a claim ('' = none): its fingerprint, its ticket, until when it holds the
--       key (ms), how long the record then lives (ms), now (ms); then field/value pairs...
if ARGV[2] ~= '' then
  local existing = redis.call('GET', KEYS[5])
  if existing and existing ~= ARGV[1] and ARGV[5] ~= '1' then return existing end
  redis.call('SET', KEYS[5], ARGV[1])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 13, #ARGV))
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
local next_key = 6
if ARGV[6] ~= '' then
  redis.call('ZADD', KEYS[6], 0, ARGV[1])
  redis.call('SADD', KEYS[7], ARGV[6])
  next_key = 8
end
if ARGV[7] ~= '' then redis.call('ZADD', KEYS[next_key], 0, ARGV[1]) end
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1]) end
if ARGV[8] ~= '' then
  -- The claim names its job in the same step as the job is made, so a repeat of the request finds the job,
  -- whatever becomes of the first request. A claim that is gone was on a primary that failed over before
  -- it reached this one: made again here. A claim another request holds now is left alone.
  local record, callers = KEYS[#KEYS - 1], KEYS[#KEYS]
  local held = redis.call('HMGET', record, 'fingerprint', 'ticket')
  if not held[1] or (held[1] == ARGV[8] and held[2] == ARGV[9]) then
    local lives, now = tonumber(ARGV[11]), tonumber(ARGV[12])
    redis.call('HSET', record, 'fingerprint', ARGV[8], 'state', 'pending', 'ticket', ARGV[9], 'until', ARGV[10],
               'job', ARGV[1])
    redis.call('PEXPIRE', record, lives)
    redis.call('ZADD', callers, now + lives, record)
    redis.call('PEXPIRE', callers, lives)
  end
end
if ARGV[4] ~= '' then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  if ARGV[2] ~= '' then redis.call('EXPIRE', KEYS[5], ARGV[4]) end
end
return ARGV[1]
