-- The one way work comes due for the sweepers: a member put in one of the indexes a sweep reads (the due index, the
-- deadlines, the batches being canceled or made) with, in the same step, a push of the sweepers' wake-up list
-- (Keys.sweep_added, store/wakes.py) when the index was empty. A sweeper rests only once every index it reads is
-- empty, and then only on that list: a producer that wrote an index itself and forgot the push left its work due
-- with nobody woken until the sweeper's next look (issue 93: a burst of jobs waiting for a price, put back due in
-- two seconds by a web process before the send that would have woken a sweeper, waited 30 s and more).

local sweep_index = {}

-- Put `member` in the index `key` at `score`, waking a sweeper through `wake` if the index held nothing before. A
-- member already there is only moved: the index held it, so no sweeper rested on it (and no command is spent looking).
function sweep_index.add(key, wake, score, member)
  if redis.call('ZADD', key, score, member) == 1 and redis.call('ZCARD', key) == 1 then
    redis.call('LPUSH', wake, 1)
    redis.call('LTRIM', wake, 0, 0)
  end
end
