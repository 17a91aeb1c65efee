-- Keeps an account's balance as BFL said it at ``at``, unless a later reading is kept already: a doctor's read
-- and a worker's may cross, and the one asked last must not be replaced by the one asked before it.
--
-- KEYS[1] the account's balance hash. ARGV: credits, at (epoch seconds), ttl (seconds).
-- Returns 1 if kept.
local kept = tonumber(redis.call('HGET', KEYS[1], 'at'))
if kept and kept > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'credits', ARGV[1], 'at', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
