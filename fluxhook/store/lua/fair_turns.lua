-- needs: members
-- The fair-share rule, in one place: start-time fair queueing over owners, shared by the BFL slots
-- (slots_prelude.lua) and the workers' work lines (work_take.lua).
--
-- Runs after members.lua: a line's members are `<owner>:<job id>`, each owner's one lexical range. Each owner's next turn has a
-- virtual start, its pass, or the clock if that is later (an owner back from idle starts level with
-- the others and carries no credit). A turn goes to the owner with the earliest start among those
-- with an item that may go now; ties go to the earliest job. The turn costs the owner cost / weight
-- (a slot's time for the slots, 1 for a worker's task), and the clock moves to its start.
--
-- Inside an owner, its app's end users take its turns by the same rule, one level down: the item an owner's turn
-- serves is that of its end user (a group of its members, members.lua) whose own turn starts first, each end user's
-- turn costing it the owner's cost (they weigh alike), against a clock of the owner's own. An owner's share against the
-- others is its own whatever the number of end users it names; its single jobs still go before its batch items, and
-- an owner whose members name no end user is read and served as it always was, command for command. An end user's
-- pass is kept only while it has items waiting after its turn: one back from idle starts level with the others, and
-- the passes hold no field for an end user with nothing in line.

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
-- when next asked (turns.refresh). An owner with end users: its end user's, and whose turn is next is asked again.
function fair_turns.advance(head)
  local at = head.group or head
  if at.after == nil then
    at.stale = true
  else
    at.item, at.after = at.after or nil, nil
    at.job = at.item and members.member_job(head.owner, at.item)
  end
  head.group = nil
end

-- A head of which ``job`` was served: advanced if that was its own, else (a later job of its owner served in its
-- place) the one after it is no longer known.
function fair_turns.served(head, job)
  if job == head.job then return fair_turns.advance(head) end
  local at = head.group or head
  at.after = nil
  head.group = nil
end

-- The bounds of one group of an owner's members of one form (bulk: its batch items'): those of the end user of
-- ``tag``, or ('') of no end user, which sort after every end user's in the form.
function fair_turns.group_bounds(owner, bulk, tag)
  local form = owner .. ':' .. (bulk and members.BULK or '')
  if tag ~= '' then
    return '[' .. form .. members.END_USER .. tag .. ':', '(' .. form .. members.END_USER .. tag .. ';'
  end
  -- '"' follows '!' and sorts before every rank, job id and '~'.
  return '[' .. form .. '"', bulk and members.owner_last(owner) or ('(' .. owner .. ':' .. members.BULK)
end

-- ``head``'s groups, when its earliest member is an end user's: of that member's form, each end user's (and no end
-- user's) earliest member and the one after it, one lookup of two items per group as fair_turns.heads reads owners.
-- A head whose earliest is no end user's has none: no end user's single job comes before it, so it goes first.
function fair_turns.split(line, head)
  head.groups, head.group = nil, nil
  if not head.item then return end
  local owner = head.owner
  local bulk, tag = members.form(owner, head.item)
  if tag == '' then return end
  local groups = {}
  if head.after == false then
    local first, last = fair_turns.group_bounds(owner, bulk, tag)
    groups[1] = {tag = tag, item = head.item, job = head.job, after = false, first = first, last = last}
  else
    local to = bulk and members.owner_last(owner) or ('(' .. owner .. ':' .. members.BULK)
    -- What the owner's own lookup read is not read again: its earliest two members (the second, of another form,
    -- says its form holds no more), and on from them.
    local items, from = {head.item}, nil
    if head.after == nil then
      from = '[' .. head.item
    elseif head.after and members.form(owner, head.after) == bulk then
      items[2] = head.after
    end
    while true do
      if from then items = redis.call('ZRANGEBYLEX', line, from, to, 'LIMIT', 0, 2) end
      for _, item in ipairs(items) do
        local _, its = members.form(owner, item)
        local last = groups[#groups]
        if last and last.tag == its then
          if last.after == nil then last.after = item end
        else
          if last and last.after == nil then last.after = false end
          local first, past = fair_turns.group_bounds(owner, bulk, its)
          groups[#groups + 1] = {tag = its, item = item, job = members.member_job(owner, item), first = first,
                                 last = past}
        end
      end
      local last = groups[#groups]
      -- The group of no end user is the form's last.
      if #items < 2 or (last.after and last.tag == '') then
        if last.after == nil then last.after = false end
        break
      end
      from = last.after and last.last or ('(' .. items[#items])
    end
  end
  head.groups = groups
end

-- The field of a scheduler's passes that holds its clock: no owner id holds a '~' (store/owners.py), so no owner's pass
-- is named so. The clock is kept beside the passes so that an owner's pass and the clock are read in one command and
-- written in one.
fair_turns.CLOCK = '~clock'

-- The field of the passes that holds the pass of an owner's end user of ``tag`` ('': the owner's jobs of none), and
-- (tag '~') the clock of the owner's end users: owner ids hold no '!' (store/owners.py), tags no '~'.
function fair_turns.inner_field(owner, tag)
  return owner .. '!' .. tag
end

-- An end user's pass is kept as '<pass>@<job>', the job whose turn began it: a slot given back settles the pass its
-- turn was charged to (slot_time.lua), never one begun since that pass was dropped. The pass (a number) and the job
-- of a field's value; nil for none.
function fair_turns.inner_value(raw)
  if not raw then return nil end
  local pass, born = string.match(raw, '^([^@]*)@(.*)$')
  return tonumber(pass or raw), born
end

-- The turns of one scheduler: its passes (hash owner -> pass, and its clock in the field CLOCK), the weights
-- (hash owner -> weight; absent or not positive: default_weight). Each owner's pass and weight, and the
-- clock, are read once per script, when first needed (a script that finds no owner waiting reads none).
function fair_turns.new(passes, weights, default_weight)
  local turns = {pass_of = {}, weight_of = {}, also = {}, inner = {}, born = {}, version = {}, later = {}}

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
      local at = #fields
      -- Its end users' fields its turn would need (turns.refresh), in the same command.
      for _, field in ipairs(turns.later[owner] or {}) do fields[#fields + 1] = field end
      local read = redis.call('HMGET', passes, unpack(fields))
      turns.pass_of[owner] = tonumber(read[1] or 0)
      if turns.clock == nil then turns.clock = tonumber(read[2] or 0) end
      if also then turns.also[also] = read[at] or false end
      for i = at + 1, #fields do turns.keep_inner(fields[i], read[i]) end
    end
    return math.max(turns.pass_of[owner], turns.clock)
  end

  -- The passes and weights of ``owners`` (ids), with the clock, in two commands: for a caller that knows every owner
  -- it will ask of, where turns.start and turns.weight read each in commands of its own.
  function turns.read(owners)
    local read = redis.call('HMGET', passes, fair_turns.CLOCK, unpack(owners))
    local given = redis.call('HMGET', weights, unpack(owners))
    turns.clock = tonumber(read[1] or 0)
    for i, owner in ipairs(owners) do
      turns.pass_of[owner] = tonumber(read[i + 1] or 0)
      local w = tonumber(given[i])
      turns.weight_of[owner] = (w ~= nil and w > 0) and w or default_weight
    end
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

  -- An end user's field as read (false: none).
  function turns.keep_inner(field, raw)
    local pass, born = fair_turns.inner_value(raw)
    turns.inner[field], turns.born[field] = pass or false, born
  end

  -- The fields of ``owner``'s end users ``groups`` (their passes, and their clock) not read yet.
  local function unread(owner, groups)
    local known, fields = turns.inner, {}
    local clock = fair_turns.inner_field(owner, '~')
    if known[clock] == nil then fields[1] = clock end
    for _, group in ipairs(groups) do
      local field = fair_turns.inner_field(owner, group.tag)
      if known[field] == nil then fields[#fields + 1] = field end
    end
    return fields
  end

  -- The passes of ``owner``'s end users ``groups`` (and their clock) in ``turns.inner``, those not read yet read in
  -- one command.
  local function read_inner(owner, groups)
    local fields = unread(owner, groups)
    if #fields == 0 then return end
    local read = redis.call('HMGET', passes, unpack(fields))
    for i, field in ipairs(fields) do turns.keep_inner(field, read[i]) end
  end

  -- When the turn of ``owner``'s end user of ``tag`` starts: its pass, or the owner's end users' clock if later.
  local function inner_start(owner, tag)
    return math.max(turns.inner[fair_turns.inner_field(owner, tag)] or 0,
                    turns.inner[fair_turns.inner_field(owner, '~')] or 0)
  end

  -- Of ``head``'s groups (an owner with end users' jobs), the one of the end user whose turn comes first, or nil when
  -- none has a member left. Level with the clock, an end user keeping no pass (its jobs just came) goes before one
  -- that keeps one: slot time given back may bring a backlog's pass down to the clock, and its older job would then
  -- take a turn from the newcomer, one more than the backlog is owed. Then the earliest job.
  local function pick_inner(line, head)
    for _, group in ipairs(head.groups) do
      if group.stale then
        local items = redis.call('ZRANGEBYLEX', line, group.first, group.last, 'LIMIT', 0, 2)
        group.item, group.after, group.stale = items[1], items[2] or false, nil
        group.job = group.item and members.member_job(head.owner, group.item)
      end
    end
    if #head.groups == 1 then
      -- No choice to make: what its turn needs of its end user is read with the owner's pass, if that is still to
      -- be read (turns.start), else as it is charged.
      turns.later[head.owner] = unread(head.owner, head.groups)
      return head.groups[1].job and head.groups[1]
    end
    read_inner(head.owner, head.groups)
    local best, best_start, best_kept
    for _, group in ipairs(head.groups) do
      if group.job then
        local s = inner_start(head.owner, group.tag)
        local kept = turns.inner[fair_turns.inner_field(head.owner, group.tag)] ~= false
        if best == nil or s < best_start
            or (s == best_start and (best_kept and not kept or (kept == best_kept and group.job < best.job))) then
          best, best_start, best_kept = group, s, kept
        end
      end
    end
    return best
  end

  -- ``heads`` with each head served since its owner's next member was known looked up again, and each owner with end
  -- users' jobs set to the member of the one whose turn is next; returns ``heads``.
  function turns.refresh(line, heads)
    for _, head in ipairs(heads) do
      if head.stale then
        fair_turns.look(line, head)
        head.stale, head.groups, head.group, head.first, head.last = nil, nil, nil, nil, nil
      end
      if head.groups == nil and head.item and select(2, members.form(head.owner, head.item)) ~= '' then
        fair_turns.split(line, head)
      end
      if head.groups and (head.group == nil or head.picked ~= turns.version[head.owner]) then
        local group = pick_inner(line, head)
        if group == nil then
          -- Its end users' members of this form are all served: its next, of whatever form, is looked up.
          fair_turns.look(line, head)
          fair_turns.split(line, head)
          group = head.groups and pick_inner(line, head)
        end
        head.group, head.picked, head.line = group, turns.version[head.owner], line
        if group then head.item, head.job, head.after = group.item, group.job, group.after end
        -- Where its turn's member is: the range a caller looks further in for another of the same end user's.
        head.first, head.last = group and group.first, group and group.last
      end
    end
    return heads
  end

  -- Give the owner its turn, costing ``cost`` / its weight: the clock moves to the turn's start, in the same write.
  -- With ``head`` (the owner's, as turns.refresh left it, its member served already taken out of the line), its end
  -- user's turn too, costing it ``cost``; ``turns.mark`` then says which pass it charged ('<tag>@<job>', for its slot
  -- holder's entry), nil when it kept none.
  function turns.charge(owner, cost, head)
    local s = turns.start(owner)
    turns.clock = s
    turns.pass_of[owner] = s + cost / turns.weight(owner)
    local write = {owner, string.format('%.17g', turns.pass_of[owner]), fair_turns.CLOCK, string.format('%.17g', s)}
    local group, dropped = head and head.group, nil
    turns.mark = nil
    if group then
      read_inner(owner, {group})
      local field, clock = fair_turns.inner_field(owner, group.tag), fair_turns.inner_field(owner, '~')
      local inner_s = inner_start(owner, group.tag)
      turns.inner[clock] = inner_s
      write[#write + 1], write[#write + 2] = clock, string.format('%.17g', inner_s)
      -- Taken out of the line by now: whether more of it waits, when not known, is whether its range holds any.
      local more = group.after
      if more == nil then more = #redis.call('ZRANGEBYLEX', head.line, group.first, group.last, 'LIMIT', 0, 1) > 0 end
      if not more then
        -- Nothing of it waits after this turn: it keeps no pass.
        dropped = turns.inner[field] and field
        turns.inner[field] = false
      else
        local born = turns.inner[field] and turns.born[field] or head.job
        turns.inner[field], turns.born[field] = inner_s + cost, born
        write[#write + 1], write[#write + 2] = field, string.format('%.17g', turns.inner[field]) .. '@' .. born
        turns.mark = group.tag .. '@' .. born
      end
      turns.version[owner] = (turns.version[owner] or 0) + 1
    end
    redis.call('HSET', passes, unpack(write))
    if dropped then redis.call('HDEL', passes, dropped) end
    return s
  end

  return turns
end
