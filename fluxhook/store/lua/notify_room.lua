-- What notify_take and notify_finish share: the room a message's receiver and owner have for attempts, and the order
-- in which their messages get it.
-- A member is `<owner>|<host>|<message id>`; its receiver's busy field `r:<owner>|<host>`, its owner's `o:<owner>`.
-- A batch item's message is `<owner>|<host>|~|<message id>`: marked '~' as members.lua marks a batch item's line
-- member, in a field of its own so that the id stays the member's last field, where every reader finds it (an older
-- release's, which knows no mark, too).
local notify_room = {}

function notify_room.fields(member)
  local owner, host = string.match(member, '^([^|]*)|([^|]*)|')
  return 'r:' .. (owner or '') .. '|' .. (host or ''), 'o:' .. (owner or '')
end

function notify_room.bulk(member)
  return string.match(member, '^[^|]*|[^|]*|~|') ~= nil
end

-- The order of the ripe messages `ripe` (ZRANGEBYSCORE ... WITHSCORES: member, due, ...) as {member, due} pairs: an
-- owner's messages keep the places they had among everyone's, and in them its single jobs' (and its batches' own)
-- go before its batch items', each earliest due first. A key's batch of thousands of items then never holds the room
-- of one of its receivers from its single job's notification, and another key's messages keep their places.
function notify_room.singles_first(ripe)
  local order, owners = {}, {}
  for i = 1, #ripe, 2 do
    local member = ripe[i]
    local _, owner = notify_room.fields(member)
    local mine = owners[owner]
    if not mine then
      mine = {places = {}, single = {}, bulk = {}}
      owners[owner] = mine
    end
    order[#order + 1] = false
    mine.places[#mine.places + 1] = #order
    local kind = notify_room.bulk(member) and mine.bulk or mine.single
    kind[#kind + 1] = {member, ripe[i + 1]}
  end
  for _, mine in pairs(owners) do
    local n = 0
    for _, kind in ipairs({mine.single, mine.bulk}) do
      for _, item in ipairs(kind) do
        n = n + 1
        order[mine.places[n]] = item
      end
    end
  end
  return order
end

-- A message parked behind `field` (full): `<field>|<due>|<member>`, a lexical range per field, earliest due first.
-- A single job's due is written `+<due>`: '+' sorts before every digit, so its message comes back before the owner's
-- batch items' (and before those parked by a release without the mark), and tonumber reads it as it reads a plain
-- one, here and in an older release's unpark.
function notify_room.parked_entry(field, at, member)
  return field .. '|' .. (notify_room.bulk(member) and '' or '+') .. string.format('%017.3f', tonumber(at)) .. '|'
    .. member
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
