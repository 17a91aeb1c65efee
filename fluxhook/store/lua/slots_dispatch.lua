-- needs: slots_prelude
-- After the prelude. ARGV[rest]: most to hand out. Returns the jobs given a slot, one turn at a
-- time (see the prelude). Lines hold queued jobs only (a job leaves its line with any change of status).
local given = {}
while #given < tonumber(ARGV[rest]) do
  local turn = pick()
  if not turn then break end
  serve(turn)
  given[#given + 1] = turn.job
end
return given
