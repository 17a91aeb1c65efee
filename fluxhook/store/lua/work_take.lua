-- Runs after fair_turns.lua. Take up to ARGV[1] jobs from a kind's work line, one turn at a time across
-- owners (the slots' own rule: start-time fair queueing, each task a turn costing 1 / the owner's weight).
-- KEYS[1] the kind's work line; KEYS[2] its members being moved into RQ (member -> when taken);
-- KEYS[3] its passes; KEYS[4] its clock; KEYS[5] owner -> weight (the slots' own).
-- ARGV[1] most to take; ARGV[2] now; ARGV[3] the weight of an owner without one (owners.DEFAULT_WEIGHT).
-- Returns the members taken (`<owner>:<job id>`), each now in KEYS[2] until its RQ task is queued.
local line, moving, most = KEYS[1], KEYS[2], tonumber(ARGV[1])
local turns = fair_turns(KEYS[3], KEYS[4], KEYS[5], tonumber(ARGV[3]))
local heads = fair_heads(line)
local taken = {}
while #taken < most do
  local turn = turns.earliest(heads)
  if not turn then break end
  local member = fair_member(turn.owner, turn.job)
  redis.call('ZREM', line, member)
  redis.call('HSET', moving, member, ARGV[2])
  turns.charge(turn.owner, 1)
  turn.head.job = fair_head(line, turn.owner)
  taken[#taken + 1] = member
end
return taken
