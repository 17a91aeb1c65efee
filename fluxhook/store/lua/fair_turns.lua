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

-- The owner's earliest job in the line, or nil.
function fair_turns.head(line, owner)
  local first = redis.call('ZRANGEBYLEX', line, members.owner_first(owner), members.owner_last(owner),
                           'LIMIT', 0, 1)[1]
  return first and members.member_job(owner, first)
end

-- The owners with items in the line, each with its earliest job ({owner, job}): one lookup per owner,
-- jumping from one owner's range to the next, whatever the number of items.
function fair_turns.heads(line)
  local found, from = {}, '-'
  while true do
    local first = redis.call('ZRANGEBYLEX', line, from, '+', 'LIMIT', 0, 1)[1]
    if not first then break end
    local owner = members.member_owner(first)
    found[#found + 1] = {owner = owner, job = members.member_job(owner, first)}
    from = members.owner_last(owner)
  end
  return found
end

-- The field of a scheduler's passes that holds its clock: no owner id holds a '~' (store/owners.py), so no owner's pass
-- is named so. The clock is kept beside the passes so that an owner's pass and the clock are read in one command and
-- written in one.
fair_turns.CLOCK = '~clock'

-- The turns of one scheduler: its passes (hash owner -> pass, and its clock in the field CLOCK), the weights
-- (hash owner -> weight; absent or not positive: default_weight). Each owner's pass and weight, and the
-- clock, are read once per script, when first needed (a script that finds no owner waiting reads none).
function fair_turns.new(passes, weights, default_weight)
  local turns = {pass_of = {}, weight_of = {}}

  function turns.weight(owner)
    if turns.weight_of[owner] == nil then
      local w = tonumber(redis.call('HGET', weights, owner))
      turns.weight_of[owner] = (w ~= nil and w > 0) and w or default_weight
    end
    return turns.weight_of[owner]
  end

  -- When the owner's next turn starts: its pass, or the clock if that is later. The first owner's pass is read with
  -- the clock.
  function turns.start(owner)
    if turns.pass_of[owner] == nil then
      if turns.clock == nil then
        local read = redis.call('HMGET', passes, owner, fair_turns.CLOCK)
        turns.pass_of[owner], turns.clock = tonumber(read[1] or 0), tonumber(read[2] or 0)
      else
        turns.pass_of[owner] = tonumber(redis.call('HGET', passes, owner) or 0)
      end
    end
    return math.max(turns.pass_of[owner], turns.clock)
  end

  -- Of ``heads`` ({owner, job}, job nil once an owner has none left) whose owner ``eligible`` lets
  -- through (all if nil), the one whose turn comes first, or ``best`` if that comes earlier still:
  -- {owner, job, start, head}, or nil.
  function turns.earliest(heads, eligible, best)
    for _, head in ipairs(heads) do
      if head.job and (eligible == nil or eligible(head.owner)) then
        local s = turns.start(head.owner)
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
