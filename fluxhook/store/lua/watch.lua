-- Someone watches a job: its mark is set for ARGV[1] ms (never shortened by a shorter look), and a job newly
-- watched that runs at BFL is brought due for its next poll by ARGV[3] (never later than it was). A job that has
-- ended, or is gone, is not marked: nothing of it will change.
-- KEYS[1] the job's watch mark, KEYS[2] the job record, KEYS[3] the due index.
-- ARGV[1] how long the mark lasts (ms), ARGV[2] the job's id, ARGV[3] when to poll it at the latest (a score),
-- ARGV[4..] the statuses of a job that has not ended.
-- Returns 1 if the job was not watched before, else 0.
local status = redis.call('HGET', KEYS[2], 'status')
local active = false
for i = 4, #ARGV do active = active or status == ARGV[i] end
if not active then return 0 end
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
if left > 0 then return 0 end
-- Only a job with a task at BFL is polled. Only on the first look: a check under way when it comes may be
-- doubled, once; the checks that follow keep the watched pace themselves.
if status == 'submitted' and (redis.call('HGET', KEYS[2], 'bfl_id') or '') ~= '' then
  redis.call('ZADD', KEYS[3], 'XX', 'LT', ARGV[3], ARGV[2])
end
return 1
