-- The one way work comes due for the sweepers: a member put in one of the indexes a sweep reads (the due index, the
-- deadlines, the batches being canceled or made) with, in the same step, a push of the sweepers' wake-up list
-- (Keys.sweep_added, store/wakes.py) when it is the index's first entry. A sweeper rests until the first due time of
-- its indexes (none: until woken), and then only on that list: a producer that wrote an index itself and forgot the
-- push left its work due with nobody woken until the guard's look.

local sweep_index = {}

-- Put `member` in the index `key` at `score`, waking a sweeper through `wake` if it is the first entry now: a sweeper
-- rests until the first due time it saw (worker/sweeping.py), so only an earlier one needs it woken. A member already
-- there is only moved, with no command spent looking: the job flow moves a due time only while a sweeper is awake
-- (its next one within a claim's lease); one moved earlier under a sweeper at rest is found by the guard.
function sweep_index.add(key, wake, score, member)
  if redis.call('ZADD', key, score, member) == 1 and redis.call('ZRANK', key, member) == 0 then
    redis.call('LPUSH', wake, 1)
    redis.call('LTRIM', wake, 0, 0)
  end
end
