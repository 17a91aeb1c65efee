-- After the prelude. ARGV[rest]: most to hand out. Returns the jobs given a slot: the earliest in
-- any line first, of the pools that have room. Lines hold queued jobs only (a job leaves its line
-- with any change of status).
local given = {}
while #given < tonumber(ARGV[rest]) do
  local best, best_job, best_place = nil, nil, nil
  for _, pool in ipairs(pools) do
    if room(pool) then
      local head = redis.call('ZRANGE', pool.line, 0, 0, 'WITHSCORES')
      if head[1] and (best_place == nil or tonumber(head[2]) < best_place) then
        best, best_job, best_place = pool, head[1], tonumber(head[2])
      end
    end
  end
  if not best then break end
  redis.call('ZREM', best.line, best_job)
  take(best, best_job)
  given[#given + 1] = best_job
end
return given
