-- The migration's move of a scheduler's clock, kept by releases before it lived in the field ARGV[1] of its passes
-- (fair_turns.CLOCK): KEYS[1] the old clock (a string), KEYS[2] the passes. The later of the two stays, so a turn a
-- process of this release gave before the migration ran is not undone. Returns 1 if an old clock was there.
-- KEYS[1] is found by a pattern that another key may also match (the reservations of an account named 'clock'):
-- only a string is a clock. Passes made here live as long as the old clock had left to live (a budget limit's turns
-- last their day), none of them longer.
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then return 0 end
local old = tonumber(redis.call('GET', KEYS[1]))
if not old then return 0 end
local made = redis.call('EXISTS', KEYS[2]) == 0
local now = tonumber(redis.call('HGET', KEYS[2], ARGV[1]))
if not now or old > now then redis.call('HSET', KEYS[2], ARGV[1], string.format('%.17g', old)) end
local left = redis.call('PTTL', KEYS[1])
if made and left > 0 then redis.call('PEXPIRE', KEYS[2], left) end
redis.call('DEL', KEYS[1])
return 1
