-- Keeps the first answer for replay, if this request still holds its claim.
-- KEYS[1] the key's record. ARGV: the fingerprint, the status code, the body, how long to keep it (s).
-- Returns 1 if kept.
local record = redis.call('HMGET', KEYS[1], 'fingerprint', 'state')
if record[1] ~= ARGV[1] or record[2] ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[2], 'body', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
