-- Take the body an account's static secret kept for a task (whoever takes it first has it), and give its
-- room back to the account.
--
-- KEYS[1] the body's key; KEYS[2..4] the account's kept tasks, their sizes and the sum of them (as in
-- kept_keep.lua). ARGV[1] the task's id.
-- Returns the body, or nil when none is kept.
local body = redis.call('GET', KEYS[1])
local size = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if size > 0 then redis.call('DECRBY', KEYS[4], size) end
if body then return body end
return nil
