-- needs: members, slot_holders, slot_counts, batch_counts
-- Removes a job record, the job from every index, and any credits it holds reserved.
--
-- ARGV[1] the spec (JSON, store/jobs.py delete), naming each key by its position in KEYS: `record`; `indexes`, the
-- sorted sets it is in by id (every job's, the due index, the outbox, each status's, its model's and its app key's
-- as the caller read them); `bfl_task`, the BFL task index of the bfl_id the caller read, and `trackers`, that
-- task's tracking jobs by owner, with the job's `owner` as the caller read it; `reservations`, the
-- budget's; `holders` (job -> slot holder's entry, slot_holders.lua) and `held` (owner -> slots held); `slots`, each
-- account's slots of each pool, and `slot_counts` their counts (slot_counts.lua);
-- `lines`, each pool's line and the jobs waiting aside; `notify_added`, the notifiers' wake-up list (a batch's end put
-- in the outbox wakes one, outbox.lua); `channel`, where changes are announced (not a key). Returns false if there was no job, else its storage key
-- ('' if none).
local spec = cjson.decode(ARGV[1])
local id = spec.id
local data = redis.call('HMGET', KEYS[spec.record], 'status', 'bfl_id', 'storage_key', 'batch_id', 'deadline',
                        'end_user')
if not data[1] then return false end
-- A batch item's batch holds one item fewer (`batch_counts` and `outbox`, with `now` and the statuses that are `ended`).
if data[4] and data[4] ~= '' then
  batch_counts.removed(KEYS[spec.batch_counts], data[4], data[1], spec.ended[data[1]] ~= nil, spec.now, KEYS[spec.outbox],
                       KEYS[spec.notify_added])
end
redis.call('DEL', KEYS[spec.record])
-- Announced like a change (job_transition.lua): a stream following the job ends, a waiting request answers.
redis.call('PUBLISH', spec.channel, id)
for _, key in ipairs(spec.indexes) do redis.call('ZREM', KEYS[key], id) end
redis.call('HDEL', KEYS[spec.reservations], id)
-- A slot's turn stays charged as estimated: the job is gone, not ended.
local _, holder = slot_holders.parse(redis.call('HGET', KEYS[spec.holders], id))
redis.call('HDEL', KEYS[spec.holders], id)
local freed = 0
for _, key in ipairs(spec.slots) do
  if redis.call('ZREM', KEYS[key], id) == 1 then
    freed = freed + 1
    slot_counts.freed(KEYS[spec.slot_counts], KEYS[key])
  end
end
if holder and freed > 0 and redis.call('HINCRBY', KEYS[spec.held], holder, -1) <= 0 then
  redis.call('HDEL', KEYS[spec.held], holder)
end
for _, key in ipairs(spec.lines) do redis.call('ZREM', KEYS[key], members.forms(spec.owner, id, data[5], data[6])) end
if data[2] and data[2] ~= '' and data[2] == spec.bfl_id and redis.call('GET', KEYS[spec.bfl_task]) == id then
  redis.call('DEL', KEYS[spec.bfl_task])
end
if data[2] and data[2] ~= '' and data[2] == spec.bfl_id and redis.call('HGET', KEYS[spec.trackers], spec.owner) == id then
  redis.call('HDEL', KEYS[spec.trackers], spec.owner)
end
return data[3] or ''
