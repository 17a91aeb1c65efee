-- needs: fair_turns
-- Take jobs from a kind's work line for RQ, one turn at a time across owners (the
-- slots' own rule: start-time fair queueing, each task a turn costing 1 / the owner's weight), while fewer than
-- ARGV[1] tasks wait in the RQ queue they go to, counting those being moved.
-- KEYS[1] the kind's work line; KEYS[2] its members being moved into RQ (member -> when taken);
-- KEYS[3] its passes; KEYS[4] its clock; KEYS[5] owner -> weight (the slots' own); KEYS[6] the RQ queue (a list).
-- ARGV[1] most tasks waiting in that queue; ARGV[2] now; ARGV[3] the weight of an owner without one.
-- Returns the members taken (`<owner>:<job id>`), each now in KEYS[2] until its RQ task is queued.
local line, moving = KEYS[1], KEYS[2]
local room = tonumber(ARGV[1]) - redis.call('LLEN', KEYS[6]) - redis.call('HLEN', moving)
local taken = {}
if room <= 0 then return taken end
local turns = fair_turns.new(KEYS[3], KEYS[4], KEYS[5], tonumber(ARGV[3]))
local heads = fair_turns.heads(line)
while #taken < room do
  local turn = turns.earliest(heads)
  if not turn then break end
  local item = members.member(turn.owner, turn.job)
  redis.call('ZREM', line, item)
  redis.call('HSET', moving, item, ARGV[2])
  turns.charge(turn.owner, 1)
  turn.head.job = fair_turns.head(line, turn.owner)
  taken[#taken + 1] = item
end
return taken
