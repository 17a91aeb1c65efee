-- Someone watches a job: its record's mark (WATCHED_UNTIL, a time) is set ARGV[1] s from ARGV[2] (never moved
-- earlier by a shorter look), and a job newly watched that runs at BFL is brought due for its next poll by ARGV[4]
-- (never later than it was). A job that has ended, or is gone, is not marked: nothing of it will change.
-- The mark is a field of the record, not a key of its own, so that the transitions that read the record find it in
-- the same read (job_transition.lua), and it goes with the record's end (core/job.py ENDED_DROPS).
-- KEYS[1] the job record, KEYS[2] the due index.
-- ARGV[1] how long the mark lasts (s), ARGV[2] now, ARGV[3] the job's id, ARGV[4] when to poll it at the latest (a
-- score), ARGV[5] the mark's field, ARGV[6..] the statuses of a job that has not ended.
-- Returns 1 if the job was not watched before, else 0.
local status, bfl_id, marked = unpack(redis.call('HMGET', KEYS[1], 'status', 'bfl_id', ARGV[5]))
local active = false
for i = 6, #ARGV do active = active or status == ARGV[i] end
if not active then return 0 end
local now, until_ = tonumber(ARGV[2]), tonumber(ARGV[2]) + tonumber(ARGV[1])
local left = (tonumber(marked) or 0) - now
if left < tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], ARGV[5], string.format('%.3f', until_)) end
if left > 0 then return 0 end
-- Only a job with a task at BFL is polled. Only on the first look: a check under way when it comes may be
-- doubled, once; the checks that follow keep the watched pace themselves.
if status == 'submitted' and (bfl_id or '') ~= '' then
  redis.call('ZADD', KEYS[2], 'XX', 'LT', ARGV[4], ARGV[3])
end
return 1
