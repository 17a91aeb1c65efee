-- After the prelude. KEYS[own_keys + 1]: the job's record. ARGV[rest...]: pool, job id, its place
-- in line, pause in ms (0 = none), wait in ms (0 = none). A queued job goes back in line at its old
-- place (still first come, first served) and out of the due index; a pause holds its whole pool.
-- With a wait, the job alone stays out of line until then (the sweep puts it back when it comes
-- due): its slot is freed and nothing else is held back.
local pool, job, place, pause = by_name[ARGV[rest]], ARGV[rest + 1], ARGV[rest + 2], tonumber(ARGV[rest + 3])
local wait = tonumber(ARGV[rest + 4])
if redis.call('HGET', KEYS[own_keys + 1], 'status') ~= 'queued' then return 0 end
redis.call('ZREM', pool.slots, job)
if wait > 0 then
  redis.call('ZADD', due, now + wait / 1000, job)
  return 1
end
redis.call('ZREM', due, job)
redis.call('ZADD', pool.line, place, job)
if pause > 0 and redis.call('PTTL', pool.paused) < pause then
  redis.call('SET', pool.paused, 1, 'PX', pause)
end
return 1
