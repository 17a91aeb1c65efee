-- Keeps the first answer for replay, if the request still holds the key: a request that outlived
-- its lease must not write over the hold of the one that held the key after it.
--
-- KEYS[1] the key's record (see idempotency_begin.lua), KEYS[2] the caller's live keys.
-- ARGV[1] the request's ticket, ARGV[2] the status code, ARGV[3] the body, ARGV[4] how long to keep
--         the answer, in s, ARGV[5] now (ms), ARGV[6] how long the caller's live keys outlive it (ms).
-- Returns 1 if kept, 0 if the hold had lapsed.
local record = redis.call('HMGET', KEYS[1], 'ticket', 'state')
if record[1] ~= ARGV[1] or record[2] ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[2], 'body', ARGV[3])
redis.call('HDEL', KEYS[1], 'ticket')
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], tonumber(ARGV[5]) + tonumber(ARGV[4]) * 1000, KEYS[1])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]) * 1000 + tonumber(ARGV[6]))
return 1
