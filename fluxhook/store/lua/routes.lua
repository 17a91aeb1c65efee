-- A job's route, read (core/accounts.py makes it, and route_allows there is its Python side;
-- tests/unit/store/test_routes.py runs both over the same routes and fails if they differ):
-- '*' any account, 'r:<region>' those of a region, 'a:<a>,<b>' those named.
local function route_allows(route, name, region)
  if route == '*' then return true end
  local kind, value = string.sub(route, 1, 1), string.sub(route, 3)
  if kind == 'r' then return region == value end
  for each in string.gmatch(value, '[^,]+') do
    if each == name then return true end
  end
  return false
end
