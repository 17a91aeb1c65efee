-- needs: notify_room
-- An attempt of message ARGV[1] ended: its room goes back (the first message parked behind its receiver or owner
-- comes due again), and the message is due again at ARGV[2], or leaves the due set when ARGV[2] is empty.
-- KEYS[1] due, KEYS[2] sending, KEYS[3] busy, KEYS[4] parked (as notify_take.lua's).
local due, sending, busy, parked = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local member = ARGV[1]
if redis.call('ZREM', sending, member) == 1 then
  notify_room.release(due, busy, parked, member)
end
if ARGV[2] == '' then
  redis.call('ZREM', due, member)
else
  redis.call('ZADD', due, tonumber(ARGV[2]), member)
end
return 1
