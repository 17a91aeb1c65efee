-- needs: slots_waits, slots_accounts
-- What decides whether a job in a pool's line could take a slot now, for each (pool, owner, route) asked
-- (slots_waits.lua), and where each job asked stands: holding a slot, in its line, or neither (aside).
-- ARGV[rest...]: n, then n triples of a pool, an owner and a route ('*': any account); then, for each job asked, its
-- id, its pool and its member in that pool's line.
-- Returns {per triple: slots_waits.state's answer; per job: 'slot', 'line' or 'aside' (core.wait_reasons.Place)}.
local s = slots_accounts.read()
local rest = s.rest
local states = {}
local triples_end = rest + 3 * tonumber(ARGV[rest])
for i = rest + 1, triples_end, 3 do
  states[#states + 1] = slots_waits.state(s, ARGV[i], ARGV[i + 1], ARGV[i + 2])
end
local places = {}
for i = triples_end + 1, #ARGV, 3 do
  local job, pool, member = ARGV[i], s.by_name[ARGV[i + 1]], ARGV[i + 2]
  if redis.call('HEXISTS', s.holders, job) == 1 then places[#places + 1] = 'slot'
  elseif pool and redis.call('ZSCORE', pool.line, member) then places[#places + 1] = 'line'
  else places[#places + 1] = 'aside' end
end
return {states, places}
