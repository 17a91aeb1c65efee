-- needs: notify_room
-- Take up to ARGV[5] messages due for an attempt, earliest due first but a key's single jobs' before its batch
-- items' (notify_room.singles_first), each only while its receiver has fewer than ARGV[3] attempts in flight and its
-- owner fewer than ARGV[4], across every process. A message whose receiver or owner is full is parked behind it (out
-- of the due set, so the next is looked at) until an attempt of theirs ends, and comes back in the same order.
-- A taken message holds its room until its attempt ends (notify_finish.lua) or its lease ARGV[2] lapses: then it
-- is due again, and its room freed here, before anything is taken. The one rule for every notification attempt.
-- KEYS[1] due (member -> due time), KEYS[2] sending (member -> lease), KEYS[3] busy (hash), KEYS[4] parked (lexical),
-- KEYS[5] the outbox (job -> due).
-- ARGV[1] now, ARGV[2] the lease of what is taken, ARGV[3] most a receiver, ARGV[4] most an owner, ARGV[5] most
-- to take, ARGV[6] most messages looked at.
-- Returns {members taken, whether the outbox holds events due}.
local due, sending, busy, parked = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local per_receiver, per_owner = tonumber(ARGV[3]), tonumber(ARGV[4])
local want, looks = tonumber(ARGV[5]), tonumber(ARGV[6])

for _, member in ipairs(redis.call('ZRANGEBYSCORE', sending, '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', sending, member)
  notify_room.release(due, busy, parked, member)
end

local taken = {}
-- The ripe messages in one read: its order is decided among all of them, not as each comes to the head.
local ripe = want > 0 and redis.call('ZRANGEBYSCORE', due, '-inf', now, 'WITHSCORES', 'LIMIT', 0, looks) or {}
for _, item in ipairs(notify_room.singles_first(ripe)) do
  if #taken >= want then break end
  local member, at = item[1], item[2]
  local receiver, owner = notify_room.fields(member)
  if redis.call('ZSCORE', sending, member) then
    -- Sent again (a replay) while an attempt is under way: it waits for that attempt's end.
    redis.call('ZADD', due, redis.call('ZSCORE', sending, member), member)
  else
    local full = nil
    if tonumber(redis.call('HGET', busy, receiver) or 0) >= per_receiver then full = receiver
    elseif tonumber(redis.call('HGET', busy, owner) or 0) >= per_owner then full = owner end
    if full then
      redis.call('ZREM', due, member)
      redis.call('ZADD', parked, 0, notify_room.parked_entry(full, at, member))
    else
      redis.call('HINCRBY', busy, receiver, 1)
      redis.call('HINCRBY', busy, owner, 1)
      redis.call('ZADD', sending, lease, member)
      redis.call('ZADD', due, lease, member)
      taken[#taken + 1] = member
    end
  end
end
local events = redis.call('ZCOUNT', KEYS[5], '-inf', now)
return {taken, events}
