-- A job's route, read: here only (core/accounts.py route_for writes it; Python asks through Slots.accounts_for):
-- '*' any account, 'r:<region>' those of a region, 'a:<a>,<b>' those named.
local routes = {}

function routes.allows(route, name, region)
  if route == '*' then return true end
  local kind, value = string.sub(route, 1, 1), string.sub(route, 3)
  if kind == 'r' then return region == value end
  for each in string.gmatch(value, '[^,]+') do
    if each == name then return true end
  end
  return false
end
