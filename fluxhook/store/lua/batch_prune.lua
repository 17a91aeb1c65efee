-- Batch items that ended without being sent (`aborted`) keep nothing of their own: a key that makes and cancels
-- batches would otherwise grow Redis by a whole record and timeline an item, for the retention's 30 days, at no cost to
-- its limits. What is left of such an item is its batch's counts (unchanged: it counts `aborted` there) and two bits
-- of the batch's bitmap at its index (KEYS[3], Keys.batch_unsent), which its batch's results read.
--
-- KEYS[1] the batch's record (the bitmap lives as long), KEYS[2] its items' index, KEYS[3] its bitmap; KEYS[4] every
-- job's index, KEYS[5] the aborted ones', KEYS[6] the due index, KEYS[7] the deadlines, KEYS[8] the outbox, KEYS[9] the
-- routes (a hash), KEYS[10] the model's jobs, KEYS[11] the key's jobs (every job's index again for admin-token jobs);
-- then each item's record and timeline, in pairs.
-- ARGV[1] the batch id, ARGV[2] '1' when the batch's cancel ended them (else their deadline): then items whose own
-- notifications are asked for go too (the batch's own end tells of every item); then the job ids, in
-- the order of their pairs of KEYS. Only an item of that batch, `aborted`, never sent (no `bfl_id`) goes; any other is
-- left as it is, so a repeat, or an item that moved meanwhile, changes nothing. Returns how many went.
local batch, by_cancel = ARGV[1], ARGV[2] == '1'
local pruned = 0
for n = 3, #ARGV do
  local id = ARGV[n]
  local record, timeline = KEYS[12 + 2 * (n - 3)], KEYS[13 + 2 * (n - 3)]
  local f = redis.call('HMGET', record, 'batch_id', 'status', 'bfl_id', 'batch_index', 'notify_url')
  local index = tonumber(f[4])
  if f[1] == batch and f[2] == 'aborted' and (not f[3] or f[3] == '') and index
     and (by_cancel or not f[5] or f[5] == '') then
    redis.call('SETBIT', KEYS[3], 2 * index, 1)
    if by_cancel then redis.call('SETBIT', KEYS[3], 2 * index + 1, 1) end
    redis.call('DEL', record, timeline)
    for k = 4, 8 do redis.call('ZREM', KEYS[k], id) end
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[10], id)
    redis.call('ZREM', KEYS[11], id)
    redis.call('HDEL', KEYS[9], id)
    pruned = pruned + 1
  end
end
if pruned > 0 then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[3], ttl) end
end
return pruned
