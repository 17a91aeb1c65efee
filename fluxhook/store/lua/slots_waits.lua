-- needs: slots_accounts, routes
-- What decides whether an owner's job in a pool's line could take a slot now, read as the dispatch reads the slots
-- (routes, limits, cooldowns, pauses), changing nothing (but a count of slots held it had to make from its set,
-- slot_counts.lua): core/wait_reasons.py names the reason from it (in_line, LineState). Asked by
-- slots_line_states.lua, and by slots_acquire.lua for the job it leaves waiting, from the reads its own turn made.
local slots_waits = {}

-- For ``s`` (slots_accounts.read()'s context), the pool named ``pool``, ``owner`` and ``route`` ('*': any account):
-- {owner's slots held (0 when it has no max_active: not read), its max_active ('' for none), the pool's slots held and
-- its limit, and every pool's limit (max_active), over the accounts the route allows that are not cooling down; when
-- the pool's pause ends at every one of them ('' if one is not paused); when the first of the accounts the route
-- allows recovers, when every one cools down (''); what waits for storage ('all', 'bulk': batch items, '': nothing);
-- and when batch items may go again ('': unknown, or not waiting)}.
function slots_waits.state(s, pool, owner, route)
  local usable, warm, cooling_until, paused_until = 0, 0, nil, nil
  local all_paused = true
  local pool_held, pool_limit, total_limit = 0, 0, 0
  for _, account in ipairs(s.accounts) do
    if routes.allows(route, account.name, account.region) then
      usable = usable + 1
      local ends = s.cooldown_until(account)
      if ends then
        cooling_until = math.min(cooling_until or ends, ends)
      else
        warm = warm + 1
        local its = account.pools[pool]
        pool_held = pool_held + s.held_in(account, pool)
        pool_limit = pool_limit + its.limit
        total_limit = total_limit + account.max_active
        -- Past one account not paused, the pause says nothing (only every one paused is a reason): not read.
        local ms = all_paused and s.paused_ms(its) or -2
        if ms > 0 then
          local ends_at = s.now + ms / 1000
          paused_until = math.min(paused_until or ends_at, ends_at)
        else
          all_paused = false
        end
      end
    end
  end
  local cap = s.cap(owner)
  local storage = s.storage_held()
  return {cap and s.held_of(owner) or 0, cap and tostring(cap) or '', pool_held, pool_limit, total_limit,
          (warm > 0 and all_paused) and s.fmt(paused_until) or '',
          (usable > 0 and warm == 0) and s.fmt(cooling_until) or '',
          s.storage_level() or '', storage and string.match(storage, '^([^|]*)') or ''}
end
