-- needs: members
-- What an owner may hold queued (docs/operating.md, "What a key holds is bounded"): its jobs waiting for a slot (in a pool's
-- line or aside) and the items its batches being made have yet to make, at most its limit (its app key's
-- max_queued, else MAX_QUEUED_PER_KEY: store/slots.py passes it). Checked in the very step that makes a job
-- (slots_acquire.lua) or holds room for a batch's items (slots_queue.lua), so no two makers over any number of
-- processes both take the last room.
--
-- The count is read from the lines themselves (an owner's members are one lexical range: one ZLEXCOUNT a pool and one
-- for those aside), not kept beside them: a count kept by every step that moves a job could drift, and a count that
-- drifted up would refuse a key for good. Most jobs pay one ZCARD instead: no owner holds more queued jobs than
-- every owner together (K.queued_jobs, the queued status's index), so an owner that far from its limit is let in.
--
-- A batch holds room for all its items before its first is made (K.queue_room: `<owner>` its items held, `~<batch>`
-- the batch's), and each item made takes one of them: the batch is refused whole or made whole. A hold its making
-- stopped using lapses (K.queue_room_lapses, `<owner>|<batch>` scored by when) and its room comes back.
local queue_room = {}

-- How many of a batch's items made between two moves of its hold's lapse: a making that goes on keeps its hold.
queue_room.RENEW_EVERY = 100

-- A hold's member in K.queue_room_lapses.
function queue_room.hold_of(owner, batch) return owner .. '|' .. batch end

-- The hold of `owner`'s batch `batch` ends: its room not used comes back.
function queue_room.release(K, owner, batch)
  local left = tonumber(redis.call('HGET', K.queue_room, '~' .. batch))
  redis.call('HDEL', K.queue_room, '~' .. batch)
  redis.call('ZREM', K.queue_room_lapses, queue_room.hold_of(owner, batch))
  if left and left > 0 and redis.call('HINCRBY', K.queue_room, owner, -left) <= 0 then
    redis.call('HDEL', K.queue_room, owner)
  end
end

-- The room `owner`'s batches being made hold, those lapsed by `now` given back first (read only when it holds some).
function queue_room.held(K, owner, now)
  local held = tonumber(redis.call('HGET', K.queue_room, owner)) or 0
  if held <= 0 then return 0 end
  local lapsed = redis.call('ZRANGEBYSCORE', K.queue_room_lapses, '-inf', now, 'LIMIT', 0, 16)
  if #lapsed == 0 then return held end
  for _, hold in ipairs(lapsed) do
    local its_owner, batch = string.match(hold, '^([^|]*)|(.*)$')
    queue_room.release(K, its_owner, batch)
  end
  return tonumber(redis.call('HGET', K.queue_room, owner)) or 0
end

-- How many of `owner`'s jobs wait for a slot: in each pool's line (`lines`) and aside.
function queue_room.queued(K, lines, owner)
  local first, last = members.owner_first(owner), members.owner_last(owner)
  local count = redis.call('ZLEXCOUNT', K.aside, first, last)
  for _, line in ipairs(lines) do count = count + redis.call('ZLEXCOUNT', line, first, last) end
  return count
end

-- nil when `owner` has room for `items` more under `limit`; else {its jobs queued, the room its batches hold, limit}.
function queue_room.full(K, lines, owner, items, limit, now)
  local held = queue_room.held(K, owner, now)
  if redis.call('ZCARD', K.queued_jobs) + held + items <= limit then return nil end
  local queued = queue_room.queued(K, lines, owner)
  if queued + held + items <= limit then return nil end
  return {queued, held, limit}
end

-- Hold room for `items` of `owner`'s batch `batch` until `now` + `lease` s (moved on as its items are made); nil,
-- or what `full` says when there is none.
function queue_room.hold(K, lines, owner, batch, items, limit, now, lease)
  local full = queue_room.full(K, lines, owner, items, limit, now)
  if full then return full end
  redis.call('HINCRBY', K.queue_room, owner, items)
  redis.call('HINCRBY', K.queue_room, '~' .. batch, items)
  redis.call('ZADD', K.queue_room_lapses, now + lease, queue_room.hold_of(owner, batch))
  return nil
end

-- One item of `owner`'s batch `batch` is being made: true if it takes room its batch holds (then it is counted in
-- its line, and the hold is one smaller), false if the batch holds none (its hold lapsed: the item is checked as a job).
function queue_room.take_held(K, owner, batch, now, lease)
  local left = redis.call('HINCRBY', K.queue_room, '~' .. batch, -1)
  if left < 0 then
    redis.call('HDEL', K.queue_room, '~' .. batch)
    return false
  end
  if redis.call('HINCRBY', K.queue_room, owner, -1) <= 0 then redis.call('HDEL', K.queue_room, owner) end
  if left == 0 then
    redis.call('HDEL', K.queue_room, '~' .. batch)
    redis.call('ZREM', K.queue_room_lapses, queue_room.hold_of(owner, batch))
  elseif left % queue_room.RENEW_EVERY == 0 then
    redis.call('ZADD', K.queue_room_lapses, 'XX', now + lease, queue_room.hold_of(owner, batch))
  end
  return true
end
