-- A slot holder's entry (store/keys.py slot_holders: job -> '<account>|<owner>|<charge>'): written when a job takes a
-- slot, read once when it gives it back. Account names and owner ids hold no '|' (core/accounts.py, store/owners.py).
local slot_holders = {}

function slot_holders.value(account, owner, charge)
  return account .. '|' .. owner .. '|' .. string.format('%.17g', charge)
end

-- The account, owner and charge (a number) of an entry; nil for none (false: HGET of a job holding no slot).
function slot_holders.parse(value)
  if not value then return nil end
  local account, owner, charge = string.match(value, '^([^|]*)|([^|]*)|(.*)$')
  return account, owner, tonumber(charge) or 0
end
