-- BFL accepted a task of the account: a cooldown that is over (the account on probation) ends; one still
-- running, or one that lasts until the balance reads above zero, stays.
--
-- KEYS[1] the account's cooldown. ARGV: now (epoch seconds).
-- Returns 1 if a cooldown ended.
local ends, lasting = unpack(redis.call('HMGET', KEYS[1], 'until', 'lasting'))
if not ends or lasting == '1' or tonumber(ends) > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
return 1
