-- needs: members, fair_turns, work_moves
-- Take jobs from the work lines for RQ, kind by kind in KEYS' order (a result whose URL expires first), and within a
-- kind one turn at a time across owners (the slots' own rule: start-time fair queueing, each task a turn costing
-- 1 / the owner's weight), while fewer than ARGV[1] tasks wait in the RQ queue the kind's tasks go to, counting those
-- this call took before for that queue (not those another process took and has yet to queue: store/work_lines.py says
-- what that costs). Every kind in one call, and the lines looked at together first: a feed with no work waiting costs
-- one command, and kinds after the last with work none.
-- KEYS[1] owner -> weight (the slots' own); KEYS[2] the due index; then three keys a kind: its work line; its passes
-- (with its clock, fair_turns.lua); the RQ queue its tasks go to (a list).
-- ARGV[1] most tasks waiting in a queue; ARGV[2] now; ARGV[3] the weight of an owner without one; ARGV[4] a move's
-- lease (s).
-- Returns, a list a kind in KEYS' order, the members taken (`<owner>:<job id>`), each job held by its move's lease
-- (work_moves.take) until its RQ task is queued; an empty list when no line holds work.
local PER_KIND, FIRST = 3, 3
local kinds = (#KEYS - FIRST + 1) / PER_KIND
local lines = {}
for k = 1, kinds do lines[k] = KEYS[FIRST + (k - 1) * PER_KIND] end
-- How many lines hold work: once those are seen, the kinds after them cost nothing.
local unseen = redis.call('EXISTS', unpack(lines))
if unseen == 0 then return {} end

local ahead, now, default_weight, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local waiting, out = {}, {}
for k = 1, kinds do
  local line, passes, queue = unpack(KEYS, FIRST + (k - 1) * PER_KIND, FIRST - 1 + k * PER_KIND)
  local taken = {}
  if unseen > 0 and waiting[queue] == nil then waiting[queue] = redis.call('LLEN', queue) end
  -- A full queue (as under load) is not worth a look at the line; its owners' first jobs say whether it holds work.
  local heads = (unseen > 0 and waiting[queue] < ahead) and fair_turns.heads(line) or {}
  if #heads > 0 then
    unseen = unseen - 1
    local turns = fair_turns.new(passes, KEYS[1], default_weight)
    while waiting[queue] + #taken < ahead do
      local turn = turns.earliest(turns.refresh(line, heads))
      if not turn then break end
      local item = turn.head.item
      redis.call('ZREM', line, item)
      work_moves.take(KEYS[2], turn.job, now, lease)
      turns.charge(turn.owner, 1, turn.head)
      fair_turns.advance(turn.head)
      taken[#taken + 1] = item
    end
    waiting[queue] = waiting[queue] + #taken
  end
  out[k] = taken
end
return out
