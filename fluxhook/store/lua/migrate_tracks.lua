-- The migration's move of a tracked job from the task index of a release that tracked a task once (`bfl:<id>` ->
-- the one job tracking it) to today's, one job per owner (`tracks:<id>`: owner -> job id), only if the old index
-- still names the job the migration read; its life goes with it. The old index then names no job: today it is
-- only for the job fluxhook submitted as the task.
--
-- KEYS[1] the old index, KEYS[2] the task's trackers. ARGV[1] the job's id, ARGV[2] its owner.
-- Returns 1 if it was moved.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local left = redis.call('PTTL', KEYS[1])
redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[1])
if left > 0 and redis.call('PTTL', KEYS[2]) < left then redis.call('PEXPIRE', KEYS[2], left) end
redis.call('DEL', KEYS[1])
return 1
