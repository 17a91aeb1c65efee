-- Moves one job from a line as releases before fair share kept it into the new line, if it is
-- still queued; a job that has moved on is only dropped from the old line.
--
-- KEYS[1] the old line, KEYS[2] the job's record, KEYS[3] the pool's line, KEYS[4] job -> owner.
-- ARGV: job id, the admin owner (whose jobs they were: there were no others).
-- Returns 1 if the job now waits in the new line.
local job = ARGV[1]
if redis.call('ZREM', KEYS[1], job) == 0 then return 0 end
if redis.call('HGET', KEYS[2], 'status') ~= 'queued' then return 0 end
local owner = redis.call('HGET', KEYS[4], job) or ARGV[2]
redis.call('HSET', KEYS[4], job, owner)
redis.call('ZADD', KEYS[3], 0, owner .. ':' .. job)
return 1
