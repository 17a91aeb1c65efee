-- needs: slots_accounts, routes
-- The accounts each route asked may send through, read as the dispatch reads a route (routes.lua), changing
-- nothing. ARGV[rest...]: the routes ('*': any account). Returns per route the names of the accounts it allows,
-- in the accounts' order.
local s = slots_accounts.read()
local allowed = {}
for i = s.rest, #ARGV do
  local names = {}
  for _, account in ipairs(s.accounts) do
    if routes.allows(ARGV[i], account.name, account.region) then names[#names + 1] = account.name end
  end
  allowed[#allowed + 1] = names
end
return allowed
