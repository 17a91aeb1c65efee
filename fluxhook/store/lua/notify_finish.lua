-- needs: notify_room
-- An attempt of ARGV[1] ended, or it will not be attempted: its note of being in flight goes and its room comes back
-- (notify_room.release: whatever is parked first behind its receiver or owner comes due again), as long as a note
-- was there: room given back once per take, never twice, whether an end is told twice or after its lease lapsed
-- and a take gave the room back. An end told once the message was taken again ends the newer attempt's hold instead
-- (that attempt then runs outside the count, and its own end gives back nothing): an attempt outlives its lease, four
-- of its deadlines, only when its process stalls, too seldom to carry the lease from the take to every end and read
-- it here. The message is due again at ARGV[2], or leaves the due set when ARGV[2] is empty.
-- Either makes a message due, so either wakes a notifier (KEYS[4], a wake-up list: store/wakes.py), once for the
-- step: a notifier waits until the earliest due time it knows of, and a retry sooner, a message back in a room freed,
-- would otherwise wait for it, whichever process's attempt ended.
-- KEYS[1] due, KEYS[2] busy, KEYS[3] parked (as notify_take.lua's), KEYS[4] the notifiers' wake-up.
local due, busy, parked = KEYS[1], KEYS[2], KEYS[3]
local member = ARGV[1]
local came_back = redis.call('HDEL', busy, notify_room.note(member)) == 1
  and notify_room.release(due, busy, parked, member)
if ARGV[2] == '' then
  redis.call('ZREM', due, member)
else
  redis.call('ZADD', due, tonumber(ARGV[2]), member)
end
if came_back or ARGV[2] ~= '' then
  if redis.call('LPUSH', KEYS[4], 1) > 1 then redis.call('LTRIM', KEYS[4], 0, 0) end
end
return 1
