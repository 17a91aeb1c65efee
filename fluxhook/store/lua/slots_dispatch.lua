-- needs: slots_prelude
-- After the prelude. ARGV[rest]: most to hand out. Returns the jobs given a slot, one turn at a
-- time (see the prelude). Lines hold queued jobs only (a job leaves its line with any change of status).
local s = slots_prelude.start(slots_accounts.read())
local given = {}
while #given < tonumber(ARGV[s.rest]) do
  local turn = s.pick()
  if not turn then break end
  s.serve(turn)
  given[#given + 1] = turn.job
end
return given
