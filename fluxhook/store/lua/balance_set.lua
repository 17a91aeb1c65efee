-- Keeps an account's balance as BFL said it at ``at``, unless a later reading of the same BFL is kept already: a
-- doctor's read and a worker's may cross, and the one asked last must not be replaced by the one asked before it. A
-- reading of another BFL (``bfl``: the endpoint or key changed since) is no reading of this one, and is replaced.
--
-- KEYS[1] the account's balance hash. ARGV: credits, at (epoch seconds), ttl (seconds), bfl (the BFL's digest).
-- Returns 1 if kept.
local kept = redis.call('HMGET', KEYS[1], 'at', 'bfl')
local at = tonumber(kept[1])
if at and at > tonumber(ARGV[2]) and kept[2] == ARGV[4] then return 0 end
redis.call('HSET', KEYS[1], 'credits', ARGV[1], 'at', ARGV[2], 'bfl', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
