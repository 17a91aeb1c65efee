-- The migration's seal of a callback body kept in the clear: replaced by its sealing, for the time it has left,
-- only if it is still the body the migration read.
--
-- KEYS[1] the body's key. ARGV[1] the body read, ARGV[2] its sealing.
-- Returns 1 if it was sealed.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local left = redis.call('PTTL', KEYS[1])
if left > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', left)
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
