-- After the prelude. ARGV[rest...]: pool, job id, its place in line (creation time).
-- A slot now (1) only if nobody who could use one waits in any line: first come, first served;
-- else the job joins its pool's line (0).
local pool, job, place = by_name[ARGV[rest]], ARGV[rest + 1], ARGV[rest + 2]
for _, other in ipairs(pools) do
  if redis.call('ZCARD', other.line) > 0 and room(other) then
    redis.call('ZADD', pool.line, place, job)
    return 0
  end
end
if room(pool) then
  take(pool, job)
  return 1
end
redis.call('ZADD', pool.line, place, job)
return 0
