-- needs: members, fair_turns
-- Take up to ARGV[1] checks from the check line, one turn at a time across owners by the slots' own rule (start-time
-- fair queueing, each check a turn costing 1 / the owner's weight), an owner's single jobs before its batch items, then
-- the earliest deadline (members.lua).
-- KEYS[1] owner -> weight (the slots' own); KEYS[2] the check line; KEYS[3] its passes (with its clock,
-- fair_turns.lua); KEYS[4] job id -> the claim its check was made with; KEYS[5] the line's wake-up (store/wakes.py),
-- pushed when checks are left in line, so that another process's dispatcher takes them.
-- ARGV[1] most to take; ARGV[2] the weight of an owner without one.
-- Returns {job id, claim, job id, claim, ...}: each check is the caller's, held by its claim (checking.check_job).
local weights, line, passes, claims, wake = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local want = tonumber(ARGV[1])
local heads = fair_turns.heads(line)
if #heads == 0 then return {} end
local turns = fair_turns.new(passes, weights, tonumber(ARGV[2]))
local out, taken = {}, 0
while true do
  local turn = turns.earliest(turns.refresh(line, heads))
  if not turn then break end
  if taken == want then
    redis.call('LPUSH', wake, 1)
    redis.call('LTRIM', wake, 0, 0)
    break
  end
  taken = taken + 1
  redis.call('ZREM', line, turn.head.item)
  local claim = redis.call('HGET', claims, turn.job)
  redis.call('HDEL', claims, turn.job)
  turns.charge(turn.owner, 1, turn.head)
  fair_turns.advance(turn.head)
  -- One without a claim (its entry lost with a Redis that failed over) is due again once its claim lapses.
  if claim then
    out[#out + 1] = turn.job
    out[#out + 1] = claim
  end
end
return out
