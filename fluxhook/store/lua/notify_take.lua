-- needs: fair_turns, notify_room
-- Take up to ARGV[5] messages due for an attempt by the one rule of every line (docs/fair-share.md): turns between
-- owners by fair_turns.lua (start-time fair queueing, each attempt a turn costing 1 / the owner's weight, against the
-- passes KEYS[5]); within an owner in turns between its end users, each one's single jobs' before its batch items',
-- then the earliest deadline (notify_room.lines); each only while its receiver has fewer than ARGV[3] attempts in
-- flight and its owner fewer than ARGV[4], across every process. A message whose receiver or owner is full is parked
-- behind it (out of the due set, so the next is looked at) until an attempt of theirs ends, and comes back in the same
-- order (notify_room.unpark). A take that finds one owner's messages alone reads and charges no pass: a turn is a
-- choice between owners, and an owner back from idle starts level with the others anyway.
-- A taken message holds its room until its attempt ends (notify_finish.lua) or its lease ARGV[2] lapses, noted in
-- flight by one field of the busy hash (notify_room.note: `m:<member>` -> its lease) and due at its lease: held by
-- that one lease. Its caller carries the lease to the attempt's end, which settles the message only while the note
-- still holds it (notify_finish.lua). Lapsed, it is due again: the take that finds it ripe with its note lapsed gives
-- the dead attempt's room back first (notify_room.release, which brings back what was parked behind it), then takes it
-- as any due message, under a new lease (later than the lapsed one: a take finds it lapsed only once its clock is
-- past it), so an end of the lapsed attempt told after that is told as not the message's any more. One ripe while its attempt is under way (sent again meanwhile) waits for that attempt's end,
-- due at its lease, and is never parked: were its process to die, nothing would bring it back to give its room back.
-- The one rule for every notification attempt.
-- A process of an older release still running (a rolling deploy) notes its attempts in a set of its own, which this
-- script never reads; their messages are held in the due set by their lease all the same. Its own end of one gives its
-- room back; one whose process died, its own take's reaper while one runs, and `fluxhook migrate --again` after
-- (store/migrations.py: it notes them as ours), never this script. A
-- message it finds ripe it takes, even one whose attempt of ours is under way (sent again meanwhile: both send one
-- message id, which the receiver drops as a repeat), and a note of ours it leaves lapsed holds its room until the
-- message is due again or until `fluxhook migrate --again`: never for good.
-- KEYS[1] due (member -> due time), KEYS[2] busy (hash), KEYS[3] parked (lexical), KEYS[4] the outbox (job -> due),
-- KEYS[5] the owners' passes (with their clock), KEYS[6] owner -> weight.
-- ARGV[1] now, ARGV[2] the lease of what is taken, ARGV[3] most a receiver, ARGV[4] most an owner, ARGV[5] most
-- to take, ARGV[6] most messages looked at, ARGV[7] the weight of an owner without one.
-- Returns {members taken, whether the outbox holds events due}.
local due, busy, parked = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[1])
local per_receiver, per_owner = tonumber(ARGV[3]), tonumber(ARGV[4])
local want, looks = tonumber(ARGV[5]), tonumber(ARGV[6])

-- The ripe messages in one read (their order is decided among all of them, not as each comes to the head), and their
-- notes in one more: one under way waits for its attempt's end; a lapsed attempt's room comes back first, and when
-- that brings back a message parked behind it, the ripe are read again, so that it goes in its order.
local function ripe_ones()
  local read = want > 0 and redis.call('ZRANGEBYSCORE', due, '-inf', now, 'WITHSCORES', 'LIMIT', 0, looks) or {}
  if #read == 0 then return read, false end
  local notes = {}
  for i = 1, #read, 2 do notes[#notes + 1] = notify_room.note(read[i]) end
  local leases = redis.call('HMGET', busy, unpack(notes))
  local ripe, back = {}, false
  for i = 1, #read, 2 do
    local lease = leases[(i + 1) / 2]
    if lease and tonumber(lease) > now then
      redis.call('ZADD', due, lease, read[i])
    else
      if lease then back = notify_room.release(due, busy, parked, read[i]) or back end
      ripe[#ripe + 1], ripe[#ripe + 2] = read[i], read[i + 1]
    end
  end
  return ripe, back
end
local ripe, back = ripe_ones()
while back do ripe, back = ripe_ones() end

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
local heads = notify_room.lines(ripe)
local turns
if #heads > 1 then
  turns = fair_turns.new(KEYS[5], KEYS[6], tonumber(ARGV[7]))
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
    redis.call('ZREM', due, member)
    redis.call('ZADD', parked, 0, notify_room.parked_entry(full, at, member))
  else
    for _, field in ipairs({receiver, owner}) do
      held[field] = held[field] + 1
      if not grown[field] then grown[#grown + 1], grown[field] = field, true end
    end
    redis.call('ZADD', due, ARGV[2], member)
    taken[#taken + 1] = member
    if turns then turns.charge(head.owner, 1) end
  end
end
if #grown > 0 then
  local counts = {}
  for _, field in ipairs(grown) do counts[#counts + 1], counts[#counts + 2] = field, held[field] end
  for _, member in ipairs(taken) do counts[#counts + 1], counts[#counts + 2] = notify_room.note(member), ARGV[2] end
  redis.call('HSET', busy, unpack(counts))
end
local events = redis.call('ZCOUNT', KEYS[4], '-inf', now)
return {taken, events}
