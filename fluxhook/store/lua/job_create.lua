-- A new job record with its indexes; for a BFL task already tracked, the id of the job tracking it.
--
-- KEYS[1] the job record, KEYS[2] every job's index, KEYS[3] its status's index, KEYS[4] the due
-- index, KEYS[5] the BFL task index of its bfl_id (any key when it has none); when the job has a
-- model, KEYS[6] that model's index and KEYS[7] the set of model names; when it has an app key,
-- the index of that key's jobs after them.
-- ARGV: job id, bfl id ('' = none), due time ('' = not due), TTL in s ('' = none),
--       '1' to take over the task index (its job is gone), the model ('' = none), the app key
--       ('' = none), field/value pairs...
if ARGV[2] ~= '' then
  local existing = redis.call('GET', KEYS[5])
  if existing and existing ~= ARGV[1] and ARGV[5] ~= '1' then return existing end
  redis.call('SET', KEYS[5], ARGV[1])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 8, #ARGV))
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
if ARGV[4] ~= '' then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  if ARGV[2] ~= '' then redis.call('EXPIRE', KEYS[5], ARGV[4]) end
end
return ARGV[1]
