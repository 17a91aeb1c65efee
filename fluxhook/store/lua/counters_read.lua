-- Reads many counter hashes in one command (a year of days is 366 hashes: one reply, not 366).
--
-- KEYS: the hashes (a UTC day's usage counters, or an hour's outcomes).
-- ARGV: none.
-- Returns one array per key, in KEYS' order: its field/value pairs (empty for a key that does not exist).
local found = {}
for i, key in ipairs(KEYS) do
  found[i] = redis.call('HGETALL', key)
end
return found
