-- Keep a callback body for a task no job tracks yet, within what one account's static secret may make
-- Redis keep at once: at most ARGV[4] bodies and ARGV[5] bytes, each for ARGV[3] ms. A body kept again for
-- the same task replaces the first (its bytes counted once).
--
-- KEYS[1] the body's key; KEYS[2] the account's kept tasks, a sorted set: task id -> when it goes (ms);
-- KEYS[3] their sizes, a hash: task id -> bytes; KEYS[4] the sum of those sizes.
-- ARGV[1] now (ms), ARGV[2] the task's id, ARGV[3] how long a body is kept (ms), ARGV[4] the most bodies,
-- ARGV[5] the most bytes, ARGV[6] the body, ARGV[7] '1' to put back a body taken for an attempt that
-- failed (past the bounds too: it was counted before, and never over one kept meanwhile).
-- Returns 0 once kept (or left, when put back over a newer one), else the ms until the oldest body goes.
local now, id, keep = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local function forget(task)
  local size = tonumber(redis.call('HGET', KEYS[3], task) or '0')
  redis.call('HDEL', KEYS[3], task)
  redis.call('ZREM', KEYS[2], task)
  if size > 0 then redis.call('DECRBY', KEYS[4], size) end
end
for _, task in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do forget(task) end
local putting_back = ARGV[7] == '1'
if putting_back and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local count = redis.call('ZCARD', KEYS[2])
local bytes = tonumber(redis.call('GET', KEYS[4]) or '0')
if redis.call('ZSCORE', KEYS[2], id) then
  count = count - 1
  bytes = bytes - tonumber(redis.call('HGET', KEYS[3], id) or '0')
end
if not putting_back and (count >= tonumber(ARGV[4]) or bytes + #ARGV[6] > tonumber(ARGV[5])) then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if oldest[2] == nil then return keep end
  return math.max(1, tonumber(oldest[2]) - now)
end
forget(id)
redis.call('SET', KEYS[1], ARGV[6], 'PX', keep)
redis.call('ZADD', KEYS[2], now + keep, id)
redis.call('HSET', KEYS[3], id, #ARGV[6])
redis.call('INCRBY', KEYS[4], #ARGV[6])
for i = 2, 4 do redis.call('PEXPIRE', KEYS[i], keep) end
return 0
