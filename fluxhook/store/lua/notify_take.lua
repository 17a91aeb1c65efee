-- needs: notify_room
-- Take up to ARGV[5] messages due for an attempt, earliest due first but within a key in turns between its end users
-- and each one's single jobs' before its batch items' (notify_room.turns), each only while its receiver has fewer
-- than ARGV[3] attempts in flight and its owner fewer than ARGV[4], across every process. A message whose receiver or
-- owner is full is parked behind it (out of the due set, so the next is looked at) until an attempt of theirs ends,
-- and comes back in the same order (notify_room.unpark).
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

-- Each field's attempts in flight, read once (nothing but this script changes them meanwhile), and those this take
-- adds, written once at its end.
local held, added, grown = {}, {}, {}
local function room(receiver, owner)
  if held[receiver] == nil or held[owner] == nil then
    local read = redis.call('HMGET', busy, receiver, owner)
    if held[receiver] == nil then held[receiver] = tonumber(read[1] or 0) end
    if held[owner] == nil then held[owner] = tonumber(read[2] or 0) end
  end
  if held[receiver] >= per_receiver then return receiver end
  if held[owner] >= per_owner then return owner end
  return nil
end

local taken = {}
-- The ripe messages in one read: its order is decided among all of them, not as each comes to the head.
local ripe = want > 0 and redis.call('ZRANGEBYSCORE', due, '-inf', now, 'WITHSCORES', 'LIMIT', 0, looks) or {}
for _, item in ipairs(notify_room.turns(ripe)) do
  if #taken >= want then break end
  local member, at = item[1], item[2]
  local receiver, owner = notify_room.fields(member)
  local full = room(receiver, owner)
  if full then
    -- Parked even when an attempt of it is under way (a replay meanwhile): it comes back when its field has room.
    redis.call('ZREM', due, member)
    redis.call('ZADD', parked, 0, notify_room.parked_entry(full, at, member))
  elseif redis.call('ZADD', sending, 'NX', lease, member) == 0 then
    -- Sent again (a replay) while an attempt is under way: it waits for that attempt's end.
    redis.call('ZADD', due, redis.call('ZSCORE', sending, member), member)
  else
    for _, field in ipairs({receiver, owner}) do
      held[field] = held[field] + 1
      if not added[field] then grown[#grown + 1] = field end
      added[field] = (added[field] or 0) + 1
    end
    redis.call('ZADD', due, lease, member)
    taken[#taken + 1] = member
  end
end
for _, field in ipairs(grown) do redis.call('HINCRBY', busy, field, added[field]) end
local events = redis.call('ZCOUNT', KEYS[5], '-inf', now)
return {taken, events}
