-- What notify_take and notify_finish share: the room a message's receiver and owner have for attempts.
-- A member is `<owner>|<host>|<message id>`; its receiver's busy field `r:<owner>|<host>`, its owner's `o:<owner>`.
local notify_room = {}

function notify_room.fields(member)
  local owner, host = string.match(member, '^([^|]*)|([^|]*)|')
  return 'r:' .. (owner or '') .. '|' .. (host or ''), 'o:' .. (owner or '')
end

-- Back in the due set, at its own due time, the first message parked behind `field` (an attempt of its ended).
function notify_room.unpark(due, parked, field)
  local prefix = field .. '|'
  local first = redis.call('ZRANGEBYLEX', parked, '[' .. prefix, '(' .. prefix .. '\255', 'LIMIT', 0, 1)[1]
  if first then
    redis.call('ZREM', parked, first)
    local at, member = string.match(string.sub(first, #prefix + 1), '^([^|]*)|(.*)$')
    redis.call('ZADD', due, 'NX', tonumber(at), member)
  end
end

-- An attempt of `member` ends: its receiver and owner have room for one more, which the first parked takes.
function notify_room.release(due, busy, parked, member)
  for _, field in ipairs({notify_room.fields(member)}) do
    if redis.call('HINCRBY', busy, field, -1) <= 0 then redis.call('HDEL', busy, field) end
    notify_room.unpark(due, parked, field)
  end
end
