-- needs: members
-- Removes a job record, the job from every index, and any credits it holds reserved.
--
-- KEYS[1] the record, KEYS[2] every job's index, KEYS[3] the due index, KEYS[4] the outbox,
-- KEYS[5] the BFL task index of the job's bfl_id as the caller read it (any key when none),
-- KEYS[6] the budget's reservations, KEYS[7] the slots' job -> owner, KEYS[8] their owner -> slots
-- held, KEYS[9] the jobs waiting aside, then every status index, each account's slots of each pool, each pool's line,
-- and the index of the job's model and of its app key's jobs as the caller read them (when it has them).
-- ARGV: job id, the bfl_id the caller read, how many status indexes, how many slots keys, how many pools.
-- Returns false if there was no job, else its storage key ('' if none).
local data = redis.call('HMGET', KEYS[1], 'status', 'bfl_id', 'storage_key')
if not data[1] then return false end
local id = ARGV[1]
local statuses, slots, pools = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('DEL', KEYS[1])
for i = 2, 4 do redis.call('ZREM', KEYS[i], id) end
redis.call('HDEL', KEYS[6], id)
local owner = redis.call('HGET', KEYS[7], id)
redis.call('HDEL', KEYS[7], id)
local first_slots = 10 + statuses
local first_line = first_slots + slots
for i = 10, first_slots - 1 do redis.call('ZREM', KEYS[i], id) end
local freed = 0
for i = first_slots, first_line - 1 do freed = freed + redis.call('ZREM', KEYS[i], id) end
if owner and freed > 0 and redis.call('HINCRBY', KEYS[8], owner, -1) <= 0 then redis.call('HDEL', KEYS[8], owner) end
if owner then
  for i = first_line, first_line + pools - 1 do redis.call('ZREM', KEYS[i], member(owner, id)) end
  redis.call('ZREM', KEYS[9], member(owner, id))
end
for i = first_line + pools, #KEYS do redis.call('ZREM', KEYS[i], id) end
if data[2] and data[2] ~= '' and data[2] == ARGV[2] and redis.call('GET', KEYS[5]) == id then
  redis.call('DEL', KEYS[5])
end
return data[3] or ''
