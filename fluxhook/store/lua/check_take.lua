-- needs: members, fair_turns
-- Take up to ARGV[1] checks from the BFL accounts' check lines, one turn at a time across owners by the slots' own rule
-- (start-time fair queueing, each check a turn costing 1 / the owner's weight, over every line alike), an owner's
-- single jobs before its batch items, then the earliest deadline (members.lua); at most an account's room of its line.
-- KEYS[1] owner -> weight (the slots' own); KEYS[2] the lines' passes (with their clock, fair_turns.lua); KEYS[3] job
-- id -> the claim its check was made with; KEYS[4] the lines' wake-up (store/wakes.py), pushed when checks are left in
-- line for want of room here, so that another process's dispatcher takes them; KEYS[5..] each account's line.
-- ARGV[1] most to take; ARGV[2] the weight of an owner without one; ARGV[3..] each account's room, in KEYS' order.
-- Returns {job id, claim, account, ...}, account the line's place among KEYS[5..] (1 the first): each check is the
-- caller's, held by its claim (checking.check_job).
local weights, passes, claims, wake = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local want = tonumber(ARGV[1])
-- The lines an account has room in, and checks: an account without room costs no read of its line.
local lines = {}
for at = 5, #KEYS do
  local room = tonumber(ARGV[at - 2])
  if room > 0 then
    local heads = fair_turns.heads(KEYS[at])
    if #heads > 0 then lines[#lines + 1] = {key = KEYS[at], place = at - 4, room = room, heads = heads} end
  end
end
if #lines == 0 then return {} end
local turns = fair_turns.new(passes, weights, tonumber(ARGV[2]))
local out, taken = {}, 0
while true do
  -- The next turn among the lines with room; and whether a line without room still holds a check.
  local turn, from, left = nil, nil, false
  for _, line in ipairs(lines) do
    local heads = turns.refresh(line.key, line.heads)
    if line.room > 0 then
      local best = turns.earliest(heads, nil, turn)
      if best ~= turn then turn, from = best, line end
    elseif not left then
      for _, head in ipairs(heads) do left = left or head.job ~= nil end
    end
  end
  if turn and taken == want then turn, left = nil, true end
  if not turn then
    if left then
      redis.call('LPUSH', wake, 1)
      redis.call('LTRIM', wake, 0, 0)
    end
    break
  end
  taken = taken + 1
  from.room = from.room - 1
  redis.call('ZREM', from.key, turn.head.item)
  local claim = redis.call('HGET', claims, turn.job)
  redis.call('HDEL', claims, turn.job)
  turns.charge(turn.owner, 1, turn.head)
  fair_turns.advance(turn.head)
  -- One without a claim (its entry lost with a Redis that failed over, or its job taken from another account's line
  -- first) is due again once its claim lapses.
  if claim then
    out[#out + 1] = turn.job
    out[#out + 1] = claim
    out[#out + 1] = from.place
  end
end
return out
