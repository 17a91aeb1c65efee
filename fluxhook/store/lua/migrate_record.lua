-- The migration's change to one job's record: each field set to its new value only if it still holds what the
-- migration read, so a record changed or removed meanwhile is left as it is (and never made again).
--
-- KEYS[1] the job's record. ARGV: triples of field, the value read ('' for none), the value to set.
-- Returns how many fields were set.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local set = 0
for i = 1, #ARGV, 3 do
  if (redis.call('HGET', KEYS[1], ARGV[i]) or '') == ARGV[i + 1] then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    set = set + 1
  end
end
return set
