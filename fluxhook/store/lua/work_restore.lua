-- Members taken from a kind's work line whose RQ task was never queued (their process died in between)
-- go back in line. KEYS[1] the kind's work line; KEYS[2] its members being moved (member -> when taken).
-- ARGV[1] the time before which a taking counts as lost. Returns how many went back.
local restored = 0
local entries = redis.call('HGETALL', KEYS[2])
for i = 1, #entries, 2 do
  if tonumber(entries[i + 1]) < tonumber(ARGV[1]) then
    redis.call('HDEL', KEYS[2], entries[i])
    redis.call('ZADD', KEYS[1], 'NX', 0, entries[i])
    restored = restored + 1
  end
end
return restored
