-- needs: batch_counts
-- A batch whose making stopped before its last item (its web process died, or Redis failed it): it holds the items
-- made and no more, so that it can end, and it is canceled (the items made end as a canceled batch's do), since
-- whoever asked for it sends it again. Run again, it changes nothing more.
--
-- KEYS[1] the batch's record, KEYS[2] its items (Keys.batch_jobs), KEYS[3] every batch's counts (Keys.batch_counts),
-- KEYS[4] the batches not yet fully made, KEYS[5] the batches being canceled, KEYS[6] the notification outbox.
-- ARGV[1] the batch's id, ARGV[2] now.
-- Returns {items made, items asked for}.
local batch, now = ARGV[1], ARGV[2]
redis.call('ZREM', KEYS[4], batch)
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end
local made = redis.call('ZCARD', KEYS[2])
local asked = tonumber(redis.call('HGET', KEYS[1], 'total')) or made
local missing = (tonumber(redis.call('HGET', KEYS[3], batch_counts.field(batch, 'total'))) or made) - made
if missing > 0 then
  -- The items never made were counted queued when the batch was recorded.
  redis.call('HINCRBY', KEYS[3], batch_counts.field(batch, 'queued'), -missing)
  redis.call('HINCRBY', KEYS[3], batch_counts.field(batch, 'total'), -missing)
end
redis.call('HSETNX', KEYS[1], 'interrupted_at', now)
if redis.call('HSETNX', KEYS[1], 'canceled_at', now) == 1 then redis.call('ZADD', KEYS[5], now, batch) end
local ended = tonumber(redis.call('HGET', KEYS[3], batch_counts.field(batch, 'ended'))) or 0
batch_counts.end_if_done(KEYS[3], batch, ended, now, KEYS[6])
return {made, asked}
