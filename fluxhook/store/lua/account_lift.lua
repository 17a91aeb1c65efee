-- Ends an account's cooldown for ``reason`` (its balance read above zero after a 402), unless it cools
-- for another reason too that is not over yet.
--
-- KEYS[1] the account's cooldown. ARGV: the reason lifted, now (epoch seconds).
-- Returns 1 if the account takes tasks again.
local ends, reason = unpack(redis.call("HMGET", KEYS[1], "until", "reason"))
if not ends then return 1 end
if reason ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
