-- needs: batch_counts, sweep_index
-- A batch whose making stopped before its last item (its web process died, or Redis failed it): it holds the items
-- made and no more, so that it can end, and it is canceled (the items made end as a canceled batch's do), since
-- whoever asked for it sends it again. Run again it counts the items made since (a trip a stalled maker finished
-- after the first cut), and nothing else changes.
--
-- KEYS[1] the batch's record, KEYS[2] its items (Keys.batch_jobs), KEYS[3] every batch's counts (Keys.batch_counts),
-- KEYS[4] the batches not yet fully made, KEYS[5] the batches being canceled, KEYS[6] the notification outbox, KEYS[7]
-- the notifiers' wake-up list, KEYS[8] the sweepers'.
-- ARGV[1] the batch's id, ARGV[2] now, ARGV[3] the sweep's claim on it ('' for none): if its making went on since
-- (its maker's heartbeat moved its score), it is not cut.
-- Returns {items made, items asked for}, or nil if its making went on.
local batch, now, claimed = ARGV[1], ARGV[2], ARGV[3]
if claimed ~= '' and tonumber(redis.call('ZSCORE', KEYS[4], batch)) ~= tonumber(claimed) then return nil end
redis.call('ZREM', KEYS[4], batch)
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end
local made = redis.call('ZCARD', KEYS[2])
local asked = tonumber(redis.call('HGET', KEYS[1], 'total')) or made
local change = made - (tonumber(redis.call('HGET', KEYS[3], batch_counts.field(batch, 'total'))) or made)
if change ~= 0 then
  -- The items never made were counted queued when the batch was recorded; those made since a first cut are queued.
  redis.call('HINCRBY', KEYS[3], batch_counts.field(batch, 'queued'), change)
  redis.call('HINCRBY', KEYS[3], batch_counts.field(batch, 'total'), change)
end
redis.call('HSETNX', KEYS[1], 'interrupted_at', now)
if redis.call('HSETNX', KEYS[1], 'canceled_at', now) == 1 or change > 0 then
  sweep_index.add(KEYS[5], KEYS[8], now, batch)
end
local ended = tonumber(redis.call('HGET', KEYS[3], batch_counts.field(batch, 'ended'))) or 0
batch_counts.end_if_done(KEYS[3], batch, ended, now, KEYS[6], KEYS[7])
return {made, asked}
