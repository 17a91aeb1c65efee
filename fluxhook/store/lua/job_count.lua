-- One more attempt of a kind (attempts.<counter>) on an existing record; -1 if the job is gone
-- (a deleted job is never recreated by a late counter).
-- KEYS[1] the job record. ARGV[1] the counter's field.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
