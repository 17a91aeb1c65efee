-- needs: notify_room
-- An attempt of ARGV[1] ended (ARGV[5]: `at,status,error,ms`), or it will not be made (ARGV[5] empty). It is the
-- attempt its take gave the lease ARGV[2] (notify_take.lua), and it holds the message only while the message's note of
-- being in flight (notify_room.note) still holds that lease: the lease is compared here, in the step that acts on it,
-- so no other end can come between.
-- Its own (the note holds its lease; lapsed or not, as long as no take found it so): the note goes and the room comes
-- back (notify_room.release: whatever is parked first behind its receiver or owner comes due again); the attempt is
-- kept on the message (field a<n mod ARGV[7]>, `n` counted here, `tries` set to ARGV[6]) with its state ARGV[4] (empty:
-- unchanged), and the message is due again at ARGV[3], or leaves the due set when ARGV[3] is empty. A message found
-- delivered stays delivered, and nothing of it is due again: an attempt whose lease lapsed was answered 2xx meanwhile
-- (below), and the receiver has it.
-- Not its own (a stale end: its lease lapsed and a take gave its room back, then took the message again or parked it;
-- or an end told twice): nothing of the message's hold changes, not the note (a newer attempt's), nor the room it
-- counts, nor the due set (the newer attempt's lease, a retry it set, or the message's place behind a full receiver),
-- so the newer attempt stays inside its receiver's count. Its own outcome: the attempt is kept on the message with the
-- others (`n` counted, `tries` left to the attempt that holds the message, whose retry it times). A 2xx is not lost:
-- the message is delivered, so the newer attempt's end keeps it so (above), and a retry due or a parked place is
-- taken only to be skipped, never sent (lifecycle/delivering.py sends only a pending message); with no attempt in
-- flight it leaves the due set at once. Any other answer is the holding attempt's to settle: it was sent later, and
-- its answer is the receiver's newer word. No notifier is woken: nothing became due.
-- A message whose job was deleted meanwhile (no record) is not recreated: its own attempt's end only gives the room
-- back and takes it out of the due set.
-- Its own end makes a message due (a retry, one parked brought back), so it wakes a notifier (KEYS[4], a wake-up list:
-- store/wakes.py), once for the step: a notifier waits until the earliest due time it knows of, and a retry sooner,
-- a message back in a room freed, would otherwise wait for it, whichever process's attempt ended.
-- KEYS[1] due, KEYS[2] busy, KEYS[3] parked (as notify_take.lua's), KEYS[4] the notifiers' wake-up, KEYS[5] the
-- message's record. ARGV[6] and ARGV[7] (most attempts kept) go with ARGV[5]. Returns 1 for its own end, else 0.
local due, busy, parked, record = KEYS[1], KEYS[2], KEYS[3], KEYS[5]
local member, lease, again, state, attempt = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local receiver, owner = notify_room.fields(member)
local read = redis.call('HMGET', busy, notify_room.note(member), receiver, owner)
local was
if state ~= '' or attempt ~= '' then
  was = redis.call('HGET', record, 'state')
  if not was then state, attempt, again = '', '', '' end
end
-- The attempt kept on its message, with `more` (field, value, ...) written in the same command.
local function keep(more)
  local n = redis.call('HINCRBY', record, 'n', 1)
  more[#more + 1], more[#more + 2] = 'a' .. ((n - 1) % tonumber(ARGV[7])), attempt
  redis.call('HSET', record, unpack(more))
end

if read[1] ~= lease then
  if attempt ~= '' then keep(state == 'delivered' and {'state', state} or {}) end
  if state == 'delivered' and not read[1] then redis.call('ZREM', due, member) end
  return 0
end

local came_back = notify_room.release(due, busy, parked, member, {read[2], read[3]})
if was == 'delivered' then state, again = '', '' end
if attempt ~= '' then
  local more = {'tries', ARGV[6]}
  if state ~= '' then more[3], more[4] = 'state', state end
  keep(more)
elseif state ~= '' then
  redis.call('HSET', record, 'state', state)
end
if again == '' then
  redis.call('ZREM', due, member)
else
  redis.call('ZADD', due, tonumber(again), member)
end
if came_back or again ~= '' then
  if redis.call('LPUSH', KEYS[4], 1) > 1 then redis.call('LTRIM', KEYS[4], 0, 0) end
end
return 1
