-- One job of an app key's end user about to be sent, against its max_active: it takes a place among the end user's
-- jobs at BFL when fewer than the limit hold one (a job that holds one already keeps it). Those places are the ids of
-- its jobs sent and not pruned; a refusal names them, so the caller prunes those no longer at BFL and asks again.
-- One step over any number of senders, so no two take the last place.
--
-- KEYS[1] the end user's jobs at BFL (job id -> when it took its place, ms).
-- ARGV[1] the job's id, ARGV[2] its end user's max_active, ARGV[3] now (ms), ARGV[4] how long the ids are kept after
-- the last is added (ms).
-- Returns {1} if it holds a place, else {0, the ids holding them...}.
local job, limit = ARGV[1], tonumber(ARGV[2])
if redis.call('ZSCORE', KEYS[1], job) then return {1} end
if redis.call('ZCARD', KEYS[1]) >= limit then
  local refused = {0}
  for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do refused[#refused + 1] = id end
  return refused
end
redis.call('ZADD', KEYS[1], ARGV[3], job)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return {1}
