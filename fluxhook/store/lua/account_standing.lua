-- An account's standing once BFL accepted a task of it, for the effect that rides on a submission's record
-- (effects.lua): its refusals in a row start again from none (the pool's and the account's), and a cooldown that is
-- over (the account on probation) ends; one still running, or one that lasts until the balance reads above zero, stays.
local account_standing = {}

-- ``cooling`` the account's cooldown, ``strikes`` the keys of its refusals in a row; true if a cooldown ended.
function account_standing.accepted(cooling, strikes, now)
  -- Mostly there is neither a refusal nor a cooldown to end: one EXISTS of them all says so.
  if redis.call('EXISTS', cooling, unpack(strikes)) == 0 then return false end
  redis.call('DEL', unpack(strikes))
  local ends, lasting = unpack(redis.call('HMGET', cooling, 'until', 'lasting'))
  if not ends or lasting == '1' or tonumber(ends) > now then return false end
  redis.call('DEL', cooling)
  return true
end
