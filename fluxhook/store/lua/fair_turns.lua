-- needs: members
-- The fair-share rule, in one place: start-time fair queueing over owners, shared by the BFL slots
-- (slots_prelude.lua) and the workers' work lines (work_take.lua).
--
-- Runs after members.lua: a line's members are `<owner>:<job id>`, each owner's one lexical range. Each owner's next turn has a
-- virtual start, its pass, or the clock if that is later (an owner back from idle starts level with
-- the others and carries no credit). A turn goes to the owner with the earliest start among those
-- with an item that may go now; ties go to the earliest job. The turn costs the owner cost / weight
-- (a slot's time for the slots, 1 for a worker's task), and the clock moves to its start.

local fair_turns = {}

-- An owner's heads carry members as the line holds them: `item` its earliest member and `job` that member's job id;
-- `after` the member after it (false: none; nil: not known yet). A taker removes `item` itself, whatever form it has.

-- ``head`` set to the owner's earliest member in the line and the one after it; its job nil when it has none.
function fair_turns.look(line, head)
  local items = redis.call('ZRANGEBYLEX', line, members.owner_first(head.owner), members.owner_last(head.owner),
                           'LIMIT', 0, 2)
  head.item, head.after = items[1], items[2] or false
  head.job = items[1] and members.member_job(head.owner, items[1])
end

-- The owners with items in the line, each with its earliest member ({owner, job, item, after}): one lookup of two
-- items per owner, jumping from one owner's range to the next, whatever the number of items (an owner with one item
-- is read with the next owner's first).
function fair_turns.heads(line)
  local found, from = {}, '-'
  while true do
    local items = redis.call('ZRANGEBYLEX', line, from, '+', 'LIMIT', 0, 2)
    for _, item in ipairs(items) do
      local owner, last = members.member_owner(item), found[#found]
      if last and last.owner == owner then
        if last.after == nil then last.after = item end
      else
        if last and last.after == nil then last.after = false end
        found[#found + 1] = {owner = owner, job = members.member_job(owner, item), item = item}
      end
    end
    local last = found[#found]
    if #items < 2 then
      if last and last.after == nil then last.after = false end
      return found
    end
    -- Past the last owner's range once its second item is known, else past the last item read.
    from = last.after and members.owner_last(last.owner) or ('(' .. items[#items])
  end
end

-- A head whose member was served: its owner's next member is the one after it when that is known, else looked up
-- when next asked (fair_turns.refresh).
function fair_turns.advance(head)
  if head.after == nil then
    head.stale = true
  else
    head.item, head.after = head.after or nil, nil
    head.job = head.item and members.member_job(head.owner, head.item)
  end
end

-- ``heads`` with each head served since its owner's next member was known looked up again; returns ``heads``.
function fair_turns.refresh(line, heads)
  for _, head in ipairs(heads) do
    if head.stale then
      fair_turns.look(line, head)
      head.stale = nil
    end
  end
  return heads
end

-- The field of a scheduler's passes that holds its clock: no owner id holds a '~' (store/owners.py), so no owner's pass
-- is named so. The clock is kept beside the passes so that an owner's pass and the clock are read in one command and
-- written in one.
fair_turns.CLOCK = '~clock'

-- The turns of one scheduler: its passes (hash owner -> pass, and its clock in the field CLOCK), the weights
-- (hash owner -> weight; absent or not positive: default_weight). Each owner's pass and weight, and the
-- clock, are read once per script, when first needed (a script that finds no owner waiting reads none).
function fair_turns.new(passes, weights, default_weight)
  local turns = {pass_of = {}, weight_of = {}, also = {}}

  function turns.weight(owner)
    if turns.weight_of[owner] == nil then
      local w = tonumber(redis.call('HGET', weights, owner))
      turns.weight_of[owner] = (w ~= nil and w > 0) and w or default_weight
    end
    return turns.weight_of[owner]
  end

  -- When the owner's next turn starts: its pass, or the clock if that is later. The first owner's pass is read with
  -- the clock, and each with ``also`` when given: another field of the passes its caller will want of the owner
  -- (its estimate of slot time, slot_time.lua), kept in turns.also (false: none).
  function turns.start(owner, also)
    if turns.pass_of[owner] == nil then
      local fields = {owner}
      if turns.clock == nil then fields[2] = fair_turns.CLOCK end
      if also then fields[#fields + 1] = also end
      local read = redis.call('HMGET', passes, unpack(fields))
      turns.pass_of[owner] = tonumber(read[1] or 0)
      if turns.clock == nil then turns.clock = tonumber(read[2] or 0) end
      if also then turns.also[also] = read[#fields] or false end
    end
    return math.max(turns.pass_of[owner], turns.clock)
  end

  -- Of ``heads`` ({owner, job, also}, job nil once an owner has none left; also: see start) whose owner
  -- ``eligible`` lets through (all if nil), the one whose turn comes first, or ``best`` if that comes earlier still:
  -- {owner, job, start, head}, or nil.
  function turns.earliest(heads, eligible, best)
    for _, head in ipairs(heads) do
      if head.job and (eligible == nil or eligible(head.owner)) then
        local s = turns.start(head.owner, head.also)
        if best == nil or s < best.start or (s == best.start and head.job < best.job) then
          best = {owner = head.owner, job = head.job, start = s, head = head}
        end
      end
    end
    return best
  end

  -- Give the owner its turn, costing ``cost`` / its weight: the clock moves to the turn's start, in the same write.
  function turns.charge(owner, cost)
    local s = turns.start(owner)
    turns.clock = s
    turns.pass_of[owner] = s + cost / turns.weight(owner)
    redis.call('HSET', passes, owner, string.format('%.17g', turns.pass_of[owner]), fair_turns.CLOCK,
               string.format('%.17g', s))
    return s
  end

  return turns
end
