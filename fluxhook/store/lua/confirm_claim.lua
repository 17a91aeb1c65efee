-- Whether a check still owns its job's claim; if so the job is held until ARGV[3].
-- KEYS[1] the due index. ARGV: job id, the claim it was taken with, the score to hold while checking.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
