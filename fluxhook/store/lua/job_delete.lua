-- Removes a job record, the job from every index, and any credits it holds reserved.
--
-- KEYS[1] the record, KEYS[2] every job's index, KEYS[3] the due index, KEYS[4] the outbox,
-- KEYS[5] the BFL task index of the job's bfl_id as the caller read it (any key when none),
-- KEYS[6] the budget's reservations, then every status index, each pool's slots and line, and the
-- indexes of the job's model and of its app key's jobs as the caller read them (when it has them).
-- ARGV: job id, the bfl_id the caller read.
-- Returns false if there was no job, else its storage key ('' if none).
local data = redis.call('HMGET', KEYS[1], 'status', 'bfl_id', 'storage_key')
if not data[1] then return false end
local id = ARGV[1]
redis.call('DEL', KEYS[1])
for i = 2, 4 do redis.call('ZREM', KEYS[i], id) end
redis.call('HDEL', KEYS[6], id)
for i = 7, #KEYS do redis.call('ZREM', KEYS[i], id) end
if data[2] and data[2] ~= '' and data[2] == ARGV[2] and redis.call('GET', KEYS[5]) == id then
  redis.call('DEL', KEYS[5])
end
return data[3] or ''
