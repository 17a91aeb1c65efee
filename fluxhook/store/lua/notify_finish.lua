-- needs: notify_room
-- An attempt of message ARGV[1] ended: its room goes back (the first message parked behind its receiver or owner
-- comes due again), and the message is due again at ARGV[2], or leaves the due set when ARGV[2] is empty.
-- Either makes a message due, so either wakes a notifier (KEYS[5], a wake-up list: store/wakes.py), once for the
-- step: a notifier waits until the earliest due time it knows of, and a retry sooner, a message back in a room freed,
-- would otherwise wait for it, whichever process's attempt ended.
-- KEYS[1] due, KEYS[2] sending, KEYS[3] busy, KEYS[4] parked (as notify_take.lua's), KEYS[5] the notifiers' wake-up.
local due, sending, busy, parked = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local member = ARGV[1]
local came_back = redis.call('ZREM', sending, member) == 1 and notify_room.release(due, busy, parked, member)
if ARGV[2] == '' then
  redis.call('ZREM', due, member)
else
  redis.call('ZADD', due, tonumber(ARGV[2]), member)
end
if came_back or ARGV[2] ~= '' then
  if redis.call('LPUSH', KEYS[5], 1) > 1 then redis.call('LTRIM', KEYS[5], 0, 0) end
end
return 1
