-- Keep a callback body that came before BFL's answer to its job's submission, and say so on the job's record (its
-- flag field), in one step: the submission's transition looks for a body only when the flag says one is kept
-- (job_transition.lua, spec.take). A job gone or ended keeps nothing: nothing of it will be submitted, and a flag on an
-- ended record would outlive every step that drops it.
-- KEYS[1] the job record, KEYS[2] the body's key.
-- ARGV[1] the flag's field, ARGV[2] the body (sealed; '' to flag a body an older release kept, left as it is),
-- ARGV[3] how long it is kept (s), ARGV[4] '1' to keep it only if none is kept (a body put back after its applying
-- failed), ARGV[5..] the statuses of a job that has not ended.
-- Returns 1 if the job may still take it (kept now, or one kept already when putting back), else 0.
local status = redis.call('HGET', KEYS[1], 'status')
local active = false
for i = 5, #ARGV do active = active or status == ARGV[i] end
if not active then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], '1')
if ARGV[2] == '' then return 1 end
if ARGV[4] == '1' then redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3], 'NX')
else redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3]) end
return 1
