-- Members taken from the work lines whose RQ task was never queued (their process died in between) go back in line.
-- KEYS two a kind: its work line; its members being moved (member -> when taken).
-- ARGV[1] the time before which a taking counts as lost. Returns how many went back.
-- The moving hashes are looked at together first: with none moving, as nearly always, one command.
local movings = {}
for k = 2, #KEYS, 2 do movings[#movings + 1] = KEYS[k] end
if redis.call('EXISTS', unpack(movings)) == 0 then return 0 end
local restored, before = 0, tonumber(ARGV[1])
for k = 1, #KEYS, 2 do
  local entries = redis.call('HGETALL', KEYS[k + 1])
  for i = 1, #entries, 2 do
    if tonumber(entries[i + 1]) < before then
      redis.call('HDEL', KEYS[k + 1], entries[i])
      redis.call('ZADD', KEYS[k], 'NX', 0, entries[i])
      restored = restored + 1
    end
  end
end
return restored
