-- The one way work comes due for the notifiers: a member put in the notification outbox (Keys.outbox) with, in the
-- same step, a push of their wake-up list (Keys.notify_added, store/wakes.py), so a notifier at rest never sleeps
-- past a message due now. A producer that wrote the outbox itself and forgot the push left a message unsent until a
-- notifier's next look (issue 93: a job.submitted noted after its send waited 55 s and more).

local outbox = {}

-- Put `member` in the outbox `key` at `score` (`nx`: only if it is not there already) and wake a notifier; whether
-- it was added. A member left as it was (`nx`, there already) wakes nobody: whoever put it there woke one.
function outbox.add(key, wake, score, member, nx)
  local added
  if nx then added = redis.call('ZADD', key, 'NX', score, member) else added = redis.call('ZADD', key, score, member) end
  if added == 1 or not nx then
    redis.call('LPUSH', wake, 1)
    redis.call('LTRIM', wake, 0, 0)
  end
  return added == 1
end
