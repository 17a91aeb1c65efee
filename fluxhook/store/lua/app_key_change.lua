-- Changes an app key's record in one step, only while the key exists and is not revoked, so a
-- change racing a revocation can never bring the key back or undo it.
--
-- KEYS[1] the key's record.
-- ARGV[1] how many field/value words follow to set; then those words; then the fields to delete.
-- Returns 0 if there is no such key, 2 if it is revoked (nothing changed), 1 if changed.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'revoked_at') == 1 then return 2 end
local words = tonumber(ARGV[1])
if words > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 2, 1 + words)) end
if #ARGV > 1 + words then redis.call('HDEL', KEYS[1], unpack(ARGV, 2 + words, #ARGV)) end
return 1
