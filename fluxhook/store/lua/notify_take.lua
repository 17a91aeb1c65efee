-- needs: fair_turns, notify_room
-- Take up to ARGV[5] messages due for an attempt by the one rule of every line (docs/fair-share.md): turns between
-- owners by fair_turns.lua (start-time fair queueing, each attempt a turn costing 1 / the owner's weight, against the
-- passes KEYS[6]); within an owner in turns between its end users, each one's single jobs' before its batch items',
-- then the earliest deadline (notify_room.lines); each only while its receiver has fewer than ARGV[3] attempts in
-- flight and its owner fewer than ARGV[4], across every process. A message whose receiver or owner is full is parked
-- behind it (out of the due set, so the next is looked at) until an attempt of theirs ends, and comes back in the same
-- order (notify_room.unpark). A take that finds one owner's messages alone reads and charges no pass: a turn is a
-- choice between owners, and an owner back from idle starts level with the others anyway.
-- A taken message holds its room until its attempt ends (notify_finish.lua) or its lease ARGV[2] lapses: then it
-- is due again, and its room freed here, before anything is taken. The one rule for every notification attempt.
-- KEYS[1] due (member -> due time), KEYS[2] sending (member -> lease), KEYS[3] busy (hash), KEYS[4] parked (lexical),
-- KEYS[5] the outbox (job -> due), KEYS[6] the owners' passes (with their clock), KEYS[7] owner -> weight.
-- ARGV[1] now, ARGV[2] the lease of what is taken, ARGV[3] most a receiver, ARGV[4] most an owner, ARGV[5] most
-- to take, ARGV[6] most messages looked at, ARGV[7] the weight of an owner without one.
-- Returns {members taken, whether the outbox holds events due}.
local due, sending, busy, parked = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local per_receiver, per_owner = tonumber(ARGV[3]), tonumber(ARGV[4])
local want, looks = tonumber(ARGV[5]), tonumber(ARGV[6])

for _, member in ipairs(redis.call('ZRANGEBYSCORE', sending, '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', sending, member)
  notify_room.release(due, busy, parked, member)
end

-- Each field's attempts in flight, read once (nothing but this script changes them meanwhile), and the fields this
-- take adds to, written once at its end, in one command.
local held, grown = {}, {}
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
local heads = notify_room.lines(ripe)
local turns
if #heads > 1 then
  turns = fair_turns.new(KEYS[6], KEYS[7], tonumber(ARGV[7]))
  local ids = {}
  for i, head in ipairs(heads) do ids[i] = head.owner end
  turns.read(ids)
end
-- The owner whose turn is next, with a message left; nil when none has.
local function next_head()
  if turns then
    local turn = turns.earliest(heads)
    return turn and turn.head
  end
  return heads[1] and heads[1].job and heads[1]
end
while #taken < want do
  local head = next_head()
  if not head then break end
  local item = head.line[head.at]
  head.at = head.at + 1
  head.job = head.line[head.at] and head.line[head.at][4]
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
      if not grown[field] then grown[#grown + 1], grown[field] = field, true end
    end
    redis.call('ZADD', due, lease, member)
    taken[#taken + 1] = member
    if turns then turns.charge(head.owner, 1) end
  end
end
if #grown > 0 then
  local counts = {}
  for _, field in ipairs(grown) do counts[#counts + 1], counts[#counts + 2] = field, held[field] end
  redis.call('HSET', busy, unpack(counts))
end
local events = redis.call('ZCOUNT', KEYS[5], '-inf', now)
return {taken, events}
