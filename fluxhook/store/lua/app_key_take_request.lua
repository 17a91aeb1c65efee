-- One submission against an app key's requests_per_minute: admitted while fewer than the limit were
-- admitted in the window before now (a sliding window, exact over any number of processes).
--
-- KEYS[1] the key's log of admitted submissions (a sorted set scored by time, ms).
-- ARGV[1] now (ms), ARGV[2] the window (ms), ARGV[3] the limit, ARGV[4] a member unique to this request.
-- Returns 0 if admitted (and logged), else how many ms until the oldest logged one leaves the window.
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  -- At most the window: another process may have logged the oldest with a 'now' read after this one's.
  return math.min(window, math.max(1, tonumber(oldest[2]) + window - now))
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return 0
