-- needs: slots_accounts, routes
-- What decides whether a job in a pool's line could take a slot now, for each (pool, owner, route) asked: read
-- with the dispatch's own reading of routes, limits and cooldowns, changing nothing. core/wait_reasons.py names
-- the reason from it (in_line). And where each job asked stands: holding a slot, in its line, or neither (aside).
-- ARGV[rest...]: n, then n triples of a pool, an owner and a route ('*': any account); then, for each job asked, its
-- id, its pool and its member in that pool's line.
-- Returns {per triple: {owner's slots held, its max_active ('' for none), the pool's slots held and its limit,
-- every pool's slots held and the limit, over the accounts the route allows that are not cooling down;
-- when the pool's pause ends at every one of them ('' if one is not paused); when the first of the accounts
-- the route allows recovers, when every one cools down ('')}; per job: 'slot', 'line' or 'aside' (core.wait_reasons.Place)}.
local s = slots_accounts.read()
local now, rest, accounts, caps, fmt = s.now, s.rest, s.accounts, s.caps, s.fmt
s.count_held()
local states = {}
local triples_end = rest + 3 * tonumber(ARGV[rest])
for i = rest + 1, triples_end, 3 do
  local pool, owner, route = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local usable, warm, cooling_until, paused_until = 0, 0, nil, nil
  local all_paused = true
  local pool_held, pool_limit, total_held, total_limit = 0, 0, 0, 0
  for _, account in ipairs(accounts) do
    if routes.allows(route, account.name, account.region) then
      usable = usable + 1
      local ends = s.cooldown_until(account)
      if ends then
        cooling_until = math.min(cooling_until or ends, ends)
      else
        warm = warm + 1
        local its = account.pools[pool]
        pool_held = pool_held + its.held
        pool_limit = pool_limit + its.limit
        total_held = total_held + account.held
        total_limit = total_limit + account.max_active
        local ms = redis.call('PTTL', its.paused)
        if ms > 0 then
          paused_until = math.min(paused_until or (now + ms / 1000), now + ms / 1000)
        else
          all_paused = false
        end
      end
    end
  end
  local cap = redis.call('HGET', caps, owner)
  states[#states + 1] = {s.held_of(owner), cap or '', pool_held, pool_limit, total_held, total_limit,
                         (warm > 0 and all_paused) and fmt(paused_until) or '',
                         (usable > 0 and warm == 0) and fmt(cooling_until) or ''}
end
local places = {}
for i = triples_end + 1, #ARGV, 3 do
  local job, pool, member = ARGV[i], s.by_name[ARGV[i + 1]], ARGV[i + 2]
  if redis.call('HEXISTS', s.slot_accounts, job) == 1 then places[#places + 1] = 'slot'
  elseif pool and redis.call('ZSCORE', pool.line, member) then places[#places + 1] = 'line'
  else places[#places + 1] = 'aside' end
end
return {states, places}
