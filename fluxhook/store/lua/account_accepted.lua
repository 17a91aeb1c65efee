-- BFL accepted a task of the account: its refusals in a row start again from none (the pool's and the
-- account's), and a cooldown that is over (the account on probation) ends; one still running, or one
-- that lasts until the balance reads above zero, stays.
--
-- KEYS[1] the account's cooldown, KEYS[2] the pool's strikes there, KEYS[3] the account's strikes.
-- ARGV: now (epoch seconds).
-- Returns 1 if a cooldown ended.
redis.call('DEL', KEYS[2], KEYS[3])
local ends, lasting = unpack(redis.call('HMGET', KEYS[1], 'until', 'lasting'))
if not ends or lasting == '1' or tonumber(ends) > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
return 1
