-- needs: notify_room
-- The migration's hand-over of notification attempts in flight (store/migrations.py). First, at most ARGV[2] of those
-- an older release noted in a set of its own (KEYS[4], member -> lease): each noted as today's take notes one
-- (notify_room.note), due at its lease (a message it parked or whose job went since is due too: so a take finds its
-- note lapsed, should its process have died, and gives its room back), or, a newer attempt of ours holding that note,
-- its room given back now. Then each of ARGV[3..] (notify_due members) noted in flight with a lease lapsed by ARGV[1]
-- whose message is not due (an older release's take, which reads no note, took it again and ended it): nothing would
-- look at that note again, so its room is given back. Returns how many attempts were handed over or given back.
-- KEYS[1] due, KEYS[2] busy, KEYS[3] parked (as notify_take.lua's), KEYS[4] the older release's attempts.
local due, busy, parked = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[1])
local older = redis.call('ZRANGE', KEYS[4], 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
for i = 1, #older, 2 do
  local member, lease = older[i], older[i + 1]
  redis.call('ZREM', KEYS[4], member)
  if redis.call('HSETNX', busy, notify_room.note(member), lease) == 1 then
    redis.call('ZADD', due, 'NX', lease, member)
  else
    notify_room.release(due, busy, parked, member)
  end
end
local given = #older / 2
for i = 3, #ARGV do
  local member = ARGV[i]
  local lease = tonumber(redis.call('HGET', busy, notify_room.note(member)))
  if lease and lease <= now and not redis.call('ZSCORE', due, member) then
    redis.call('HDEL', busy, notify_room.note(member))
    notify_room.release(due, busy, parked, member)
    given = given + 1
  end
end
return given
