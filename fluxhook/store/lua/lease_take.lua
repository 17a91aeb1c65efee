-- One more lease in a counted set, if it holds fewer than its limit: each lease ends by itself unless its holder
-- renews it, so what a process that died held stops counting once its leases end. Used for a caller's open streams
-- (store/streams.py); the turns to make a batch are lua/batch_turns.lua's.
--
-- KEYS[1] the leases (a sorted set: holder's id -> when its lease ends, ms).
-- ARGV[1] now (ms), ARGV[2] the lease (ms), ARGV[3] the limit, ARGV[4] the new holder's id.
-- Returns 1 if leased, 0 if the set holds its limit.
local now, lease, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now + lease, ARGV[4])
redis.call('PEXPIRE', KEYS[1], lease)
return 1
