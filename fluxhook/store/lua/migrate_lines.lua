-- needs: members
-- The migration's move of jobs from a line as releases before fair share kept it (job ids scored by creation
-- time) into today's line, as the admin owner's (there were no others), those still queued; a job that moved
-- on meanwhile is only dropped from the old line.
--
-- KEYS[1] the old line, KEYS[2] the pool's line, KEYS[3] job -> owner as older releases kept it, then each job's record, in ARGV's order.
-- ARGV[1] the admin owner, then the job ids.
-- Returns how many now wait in the line.
local moved = 0
for i = 2, #ARGV do
  local job = ARGV[i]
  if redis.call('ZREM', KEYS[1], job) == 1 and redis.call('HGET', KEYS[2 + i], 'status') == 'queued' then
    local owner = redis.call('HGET', KEYS[3], job) or ARGV[1]
    redis.call('ZADD', KEYS[2], 0, members.member(owner, job))
    moved = moved + 1
  end
end
return moved
