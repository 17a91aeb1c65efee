-- A slot holder's entry (store/keys.py slot_holders: job -> '<account>|<owner>|<charge>|<taken>|<weight>', and
-- '|<mark>' when the turn charged a pass of its owner's end user, '<tag>@<job>', fair_turns.lua): written when a job
-- takes a slot, read once when it gives it back, which so needs neither the slot's score (when it was taken) nor the
-- owner's weight (what its turn was charged by, and so is settled by), nor the job's end user. Account names, owner
-- ids, tags and job ids hold no '|' (core/accounts.py, store/owners.py). An entry written before schema 5 (store/migrations.py) names only the first
-- three.
local slot_holders = {}

function slot_holders.value(account, owner, charge, taken, weight, mark)
  local value = account .. '|' .. owner .. '|' .. string.format('%.17g', charge)
  if taken then value = value .. '|' .. string.format('%.17g', taken) .. '|' .. string.format('%.17g', weight) end
  if taken and mark then value = value .. '|' .. mark end
  return value
end

-- The account, owner, charge (a number), when it took the slot and its owner's weight then (numbers, nil in an entry
-- that names none), and the mark of its end user's pass (nil: none) of an entry; nil for none (false: HGET of a job
-- holding no slot).
function slot_holders.parse(value)
  if not value then return nil end
  local account, owner, charge, rest = string.match(value, '^([^|]*)|([^|]*)|([^|]*)(.*)$')
  local taken, weight, mark = string.match(rest, '^|([^|]*)|([^|]*)(.*)$')
  return account, owner, tonumber(charge) or 0, tonumber(taken), tonumber(weight),
         mark and mark ~= '' and string.sub(mark, 2) or nil
end
