-- After the prelude. KEYS[own_keys + 1]: the job's record. ARGV[rest...]: pool, job id, its place
-- in line, pause in ms (0 = none). A queued job goes back in line at its old place (still first
-- come, first served) and out of the due index; a pause holds its whole pool.
local pool, job, place, pause = by_name[ARGV[rest]], ARGV[rest + 1], ARGV[rest + 2], tonumber(ARGV[rest + 3])
if redis.call('HGET', KEYS[own_keys + 1], 'status') ~= 'queued' then return 0 end
redis.call('ZREM', pool.slots, job)
redis.call('ZREM', due, job)
redis.call('ZADD', pool.line, place, job)
if pause > 0 and redis.call('PTTL', pool.paused) < pause then
  redis.call('SET', pool.paused, 1, 'PX', pause)
end
return 1
