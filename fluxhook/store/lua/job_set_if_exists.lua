-- One field of an existing record only: a job deleted meanwhile is not recreated.
-- KEYS[1] the job record. ARGV[1] the field, ARGV[2] its value. Returns 1 if set.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
