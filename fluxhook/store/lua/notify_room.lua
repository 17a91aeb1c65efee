-- What notify_take and notify_finish share: the room a message's receiver and owner have for attempts, and the order
-- in which their messages get it.
-- A member is `<owner>|<host>|<message id>`; its receiver's busy field `r:<owner>|<host>`, its owner's `o:<owner>`.
-- A batch item's message is `<owner>|<host>|~|<message id>`: marked '~' as members.lua marks a batch item's line
-- member; a message of an app's end user carries `!<its tag>|` (members.lua's tag) before the id, after any '~|'; and
-- one whose job has a deadline (`Cancel-After`) carries `@<deadline>|` before the id, after both: each mark in a
-- field of its own so that the id stays the member's last field, where every reader finds it (an older release's,
-- which knows no mark, too).
local notify_room = {}

function notify_room.fields(member)
  local owner, host = string.match(member, '^([^|]*)|([^|]*)|')
  return 'r:' .. (owner or '') .. '|' .. (host or ''), 'o:' .. (owner or '')
end

-- The busy hash's field that notes an attempt of `member` in flight: its lease (the time it lapses), the one hold of
-- the attempt, beside the counts of the room it holds (notify_take.lua).
function notify_room.note(member)
  return 'm:' .. member
end

-- Of a member: whether it is a batch item's, its end user's tag ('' for none, as every older member), and its job's
-- deadline (nil for none).
function notify_room.form(member)
  local rest = string.match(member, '^[^|]*|[^|]*|(.*)$') or ''
  local bulk = string.sub(rest, 1, 2) == '~|'
  if bulk then rest = string.sub(rest, 3) end
  local tag = string.match(rest, '^!(%x+)|')
  if tag then rest = string.sub(rest, #tag + 3) end
  return bulk, tag or '', tonumber(string.match(rest, '^@([%d.]+)|'))
end

-- A message's deadline, what orders it among its end user's messages of its form (earliest first): its job's
-- deadline when that comes before `at`, when the message is due, else `at`. A job's deadline makes its message more
-- urgent, never less: a key's messages without one are not held behind it, and one due is never waiting for a later
-- deadline to pass. Being no later than `at`, it is also when a parked message is due again (notify_room.unpark).
function notify_room.deadline(member, at)
  local _, _, deadline = notify_room.form(member)
  return deadline and math.min(deadline, at) or at
end

-- The ripe messages `ripe` (ZRANGEBYSCORE ... WITHSCORES: member, due, ...) as each owner's line, in the order its
-- messages are to go, a head as fair_turns.earliest reads one: {owner, line = {{member, due, deadline, place}, ...},
-- at = 1 (its next message's index in line), job = its next message's place among the ripe (what breaks a tie
-- between owners: the earlier due)}, owners in the order their first messages came. In an owner's line its end users
-- (those of none together as one) take turns, the one whose earliest deadline comes first going first; each end
-- user's single jobs' (and its batches' own) before its batch items', each earliest deadline first
-- (notify_room.deadline), then earliest due.
-- Between owners the turns are fair_turns.lua's (notify_take.lua). An end user with hundreds of messages then holds
-- another's by one turn, and a key's batch of thousands of items never holds the room of one of its receivers from
-- its single job's notification.
function notify_room.lines(ripe)
  local owners, of = {}, {}
  for i = 1, #ripe, 2 do
    local member = ripe[i]
    local owner = string.match(member, '^([^|]*)|') or ''
    local mine = of[owner]
    if not mine then
      mine = {owner = owner, groups = {}, of = {}}
      of[owner] = mine
      owners[#owners + 1] = mine
    end
    local bulk, tag = notify_room.form(member)
    local group = mine.of[tag]
    if not group then
      group = {single = {}, bulk = {}}
      mine.of[tag] = group
      mine.groups[#mine.groups + 1] = group
    end
    local kind = bulk and group.bulk or group.single
    kind[#kind + 1] = {member, ripe[i + 1], notify_room.deadline(member, tonumber(ripe[i + 1])), i}
  end
  local function before(a, b) return a[3] < b[3] or (a[3] == b[3] and a[4] < b[4]) end
  for _, mine in ipairs(owners) do
    local total = 0
    for _, group in ipairs(mine.groups) do
      table.sort(group.single, before)
      table.sort(group.bulk, before)
      local single, bulk = group.single[1], group.bulk[1]
      group.first = (single and not (bulk and before(bulk, single))) and single or bulk
      group.line = group.single
      for _, item in ipairs(group.bulk) do group.line[#group.line + 1] = item end
      total = total + #group.line
    end
    table.sort(mine.groups, function(a, b) return before(a.first, b.first) end)
    local line, round = {}, 1
    while #line < total do
      for _, group in ipairs(mine.groups) do
        if group.line[round] then line[#line + 1] = group.line[round] end
      end
      round = round + 1
    end
    mine.line, mine.at, mine.job, mine.groups, mine.of = line, 1, line[1][4], nil, nil
  end
  return owners
end

-- A message parked behind `field` (full): `<field>|<deadline>|<member>`, a lexical range per field, earliest deadline
-- first (notify_room.deadline: its due, or its job's deadline when earlier; when it is due again once it is back).
-- A single job's is written `+<deadline>`: '+' sorts before every digit, so its message comes back before the owner's
-- batch items' (and before those parked by a release without the mark), and tonumber reads it as it reads a plain
-- one, here and in an older release's unpark.
-- An end user's message is written ` 0.<group><form><deadline in ms>`: ' ' sorts before '+', so the end users'
-- messages are ahead of those of none, each end user's one range (its group: its tag's first 12 hex digits as 15
-- decimal ones), in it its single jobs' (form 0) before its batch items' (1), each earliest deadline first. An older
-- release's unpark reads it as a number too (a small one: the message is due at once), so it takes such entries back
-- as its own; this release's finds the end user whose turn is next (notify_room.unpark).
function notify_room.parked_entry(field, at, member)
  local bulk, tag = notify_room.form(member)
  local deadline = notify_room.deadline(member, tonumber(at))
  if tag ~= '' then
    return field .. '| 0.' .. notify_room.group(tag) .. (bulk and '1' or '0')
      .. string.format('%016.0f', deadline * 1000) .. '|' .. member
  end
  return field .. '|' .. (bulk and '' or '+') .. string.format('%017.3f', deadline) .. '|' .. member
end

-- The group of an end user's parked messages: its tag's first 12 hex digits (48 bits, exact in a Lua number).
function notify_room.group(tag)
  return string.format('%015.0f', tonumber(string.sub(tag, 1, 12), 16))
end

-- An end user's group of a parked entry's text after its field's '|' (nil for an entry of no end user), and its due.
function notify_room.parked_due(text)
  local group, due = string.match(text, '^ 0%.(%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d)%d(%-?%d+)$')
  if group then return group, tonumber(due) / 1000 end
  return nil, tonumber(text)
end

-- The busy hash's field that names the end user group of `field` last served from behind it ('' for those of none).
function notify_room.turn_field(field)
  return 'n:' .. field
end

-- Back in the due set, at its own due time, the first message parked behind `field` (an attempt of its ended): while
-- only messages of no end user wait, the earliest (singles first); once an end user's do, that of the next end user
-- after the one last served (busy's turn field), in the order of their groups and then those of none, round and
-- round. Whether one was.
function notify_room.unpark(due, busy, parked, field)
  local prefix = field .. '|'
  local last = '(' .. prefix .. '\255'
  local first = redis.call('ZRANGEBYLEX', parked, '[' .. prefix, last, 'LIMIT', 0, 1)[1]
  if not first then return false end
  local at, member = string.match(string.sub(first, #prefix + 1), '^([^|]*)|(.*)$')
  local group
  group, at = notify_room.parked_due(at)
  if group then
    local turn = notify_room.turn_field(field)
    local served = redis.call('HGET', busy, turn)
    if served and served ~= '' then
      -- ':' sorts after every digit: past every entry of the group served last.
      local after = redis.call('ZRANGEBYLEX', parked, '[' .. prefix .. ' 0.' .. served .. ':', last, 'LIMIT', 0, 1)[1]
      if after then
        first = after
        at, member = string.match(string.sub(first, #prefix + 1), '^([^|]*)|(.*)$')
        group, at = notify_room.parked_due(at)
      end
    end
    redis.call('HSET', busy, turn, group or '')
  end
  redis.call('ZREM', parked, first)
  redis.call('ZADD', due, 'NX', at, member)
  return true
end

-- An attempt of `member` ends: its note goes, and its receiver and owner have room for one more, which the first parked
-- takes. `counts`: the receiver's and the owner's attempts in flight as the caller read them (HMGET, this one's among
-- them; nil: read here), written back at once: a field with no attempt in flight left leaves the busy hash, and its
-- turn field with it when nothing is parked behind it. Whether one came back.
function notify_room.release(due, busy, parked, member, counts)
  local fields = {notify_room.fields(member)}
  counts = counts or redis.call('HMGET', busy, fields[1], fields[2])
  local back, kept, gone = false, {}, {notify_room.note(member)}
  for i, field in ipairs(fields) do
    local left = tonumber(counts[i] or 0) - 1
    local unparked = notify_room.unpark(due, busy, parked, field)
    back = back or unparked
    if left > 0 then
      kept[#kept + 1], kept[#kept + 2] = field, left
    else
      gone[#gone + 1] = field
      if not unparked then gone[#gone + 1] = notify_room.turn_field(field) end
    end
  end
  if #kept > 0 then redis.call('HSET', busy, unpack(kept)) end
  redis.call('HDEL', busy, unpack(gone))
  return back
end
