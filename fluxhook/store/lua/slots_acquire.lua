-- After the prelude. ARGV[rest...]: pool, job id, its owner, its route ('*': any account).
-- The job joins its owner's line in its pool; if it is then the one whose turn is next, it takes
-- the slot now (1), else it waits (0) for the dispatch to give it a turn.
local pool, job, owner, route = by_name[ARGV[rest]], ARGV[rest + 1], ARGV[rest + 2], ARGV[rest + 3]
redis.call('HSET', owners, job, owner)
if route ~= '*' then redis.call('HSET', routes, job, route) end
redis.call('ZADD', pool.line, 0, member(owner, job))
local turn = pick()
if turn and turn.job == job then
  serve(turn)
  return 1
end
return 0
