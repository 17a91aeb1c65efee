-- One more stream for a caller, if it holds fewer than its limit: each open stream is a lease that its web process
-- renews while the stream lives, so the streams of a process that died stop counting once their leases end.
--
-- KEYS[1] the caller's streams (a sorted set: stream id -> when its lease ends, ms).
-- ARGV[1] now (ms), ARGV[2] the lease (ms), ARGV[3] the limit, ARGV[4] the new stream's id.
-- Returns 1 if opened (and leased), 0 if the caller holds its limit.
local now, lease, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now + lease, ARGV[4])
redis.call('PEXPIRE', KEYS[1], lease)
return 1
