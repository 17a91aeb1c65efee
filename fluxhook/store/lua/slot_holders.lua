-- A slot holder's entry (store/keys.py slot_holders: job -> '<account>|<owner>|<charge>|<taken>|<weight>', and
-- '|<tag>' when the turn was its owner's end user's, fair_turns.lua): written when a job takes a slot, read once when
-- it gives it back, which so needs neither the slot's score (when it was taken) nor the owner's weight (what its turn
-- was charged by, and so is settled by), nor the job's end user. Account names, owner ids and tags hold no '|'
-- (core/accounts.py, store/owners.py). An entry written before schema 5 (store/migrations.py) names only the first
-- three.
local slot_holders = {}

function slot_holders.value(account, owner, charge, taken, weight, tag)
  local value = account .. '|' .. owner .. '|' .. string.format('%.17g', charge)
  if taken then value = value .. '|' .. string.format('%.17g', taken) .. '|' .. string.format('%.17g', weight) end
  if taken and tag then value = value .. '|' .. tag end
  return value
end

-- The account, owner, charge (a number), when it took the slot and its owner's weight then (numbers, nil in an entry
-- that names none), and its end user's tag (nil: the turn was no end user's) of an entry; nil for none (false: HGET of
-- a job holding no slot).
function slot_holders.parse(value)
  if not value then return nil end
  local account, owner, charge, rest = string.match(value, '^([^|]*)|([^|]*)|([^|]*)(.*)$')
  local taken, weight, tag = string.match(rest, '^|([^|]*)|([^|]*)(.*)$')
  return account, owner, tonumber(charge) or 0, tonumber(taken), tonumber(weight),
         tag and tag ~= '' and string.sub(tag, 2) or nil
end
