-- needs: outbox
-- A batch's counts (core/batch.py), kept by the steps that move its items, in one place for each of them
-- (job_transition.lua, job_delete.lua; store/batches.py writes a new batch's and reads them).
--
-- Every batch's counts live in one hash (Keys.batch_counts), so a step names it in KEYS whatever job it moves: the
-- fields of batch `b` are `b|total` (its items), `b|<status>` (its items in that status), `b|ended` (those ended),
-- `b|cost` (credits BFL charged for them), `b|sent` (those BFL was sent: a cancel saves only the rest), `b|ended_at` (when its last item ended) and `b|notify` (present: its end is
-- a batch.ended message, put in the outbox as `b|batch.ended`). Reading a batch is one HMGET, whatever its size.

local batch_counts = {}

function batch_counts.field(batch, name) return batch .. '|' .. name end

-- Its last item has ended once as many have ended as it holds: its end is recorded, and its message made in the
-- outbox `box`, its notifiers woken by `wake` (outbox.lua).
function batch_counts.end_if_done(counts, batch, ended, now, box, wake)
  local total = tonumber(redis.call('HGET', counts, batch_counts.field(batch, 'total')))
  if total and ended >= total and redis.call('HSETNX', counts, batch_counts.field(batch, 'ended_at'), now) == 1
     and redis.call('HEXISTS', counts, batch_counts.field(batch, 'notify')) == 1 then
    outbox.add(box, wake, now, batch_counts.field(batch, 'batch.ended'), false)
  end
end

-- An item of `batch` moved from status `from` to `to`; `ended`: `to` is terminal.
function batch_counts.moved(counts, batch, from, to, ended, now, box, wake)
  redis.call('HINCRBY', counts, batch_counts.field(batch, from), -1)
  redis.call('HINCRBY', counts, batch_counts.field(batch, to), 1)
  if from == 'queued' and to == 'submitted' then redis.call('HINCRBY', counts, batch_counts.field(batch, 'sent'), 1) end
  if ended then
    local done = redis.call('HINCRBY', counts, batch_counts.field(batch, 'ended'), 1)
    batch_counts.end_if_done(counts, batch, done, now, box, wake)
  end
end

-- BFL's charge for an item changed by `delta` credits.
function batch_counts.charged(counts, batch, delta)
  if delta ~= 0 then redis.call('HINCRBYFLOAT', counts, batch_counts.field(batch, 'cost'), delta) end
end

-- An item in `status` was deleted (`ended`: the status is terminal): the batch holds one fewer, and may have ended.
function batch_counts.removed(counts, batch, status, ended, now, box, wake)
  redis.call('HINCRBY', counts, batch_counts.field(batch, status), -1)
  redis.call('HINCRBY', counts, batch_counts.field(batch, 'total'), -1)
  local done = tonumber(redis.call('HGET', counts, batch_counts.field(batch, 'ended'))) or 0
  if ended then done = redis.call('HINCRBY', counts, batch_counts.field(batch, 'ended'), -1) end
  batch_counts.end_if_done(counts, batch, done, now, box, wake)
end
