-- needs: slots_prelude, slots_accounts
-- After the prelude. ARGV[rest]: most to hand out; ARGV[rest + 1]: '0' to leave the slots past their lease (the
-- dispatcher frees them once every few seconds, not at each of its dispatches), else they are freed first;
-- ARGV[rest + 2..]: when given, each account's senders free in the caller, in the accounts' order: no more of an
-- account's jobs go than it has, so an account whose submissions hang holds only its own senders.
-- Returns {the jobs given a slot, one turn at a time (see the prelude); the account whose slot each took, in the
-- same order; 1 if a job still waits in a pool's line, else 0; 1 if a cooldown or a pause holds some back (the clock
-- alone may free them: no wake-up comes for them), else 0}.
-- Lines hold queued jobs only (a job leaves its line with any change of status).
local s = slots_accounts.read()
if #ARGV > s.rest + 1 then
  s.senders = {}
  for j, account in ipairs(s.accounts) do s.senders[account.name] = tonumber(ARGV[s.rest + 1 + j]) end
end
slots_prelude.start(s, nil, ARGV[s.rest + 1] == '0')
local given, accounts = {}, {}
while #given < tonumber(ARGV[s.rest]) do
  local turn = s.pick()
  if not turn then break end
  s.serve(turn)
  given[#given + 1] = turn.job
  accounts[#accounts + 1] = turn.account.name
end
if not s.any_waiting() then return {given, accounts, 0, 0} end
return {given, accounts, 1, s.on_timer and 1 or 0}
