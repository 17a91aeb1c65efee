-- A job's timeline (store/timeline.py): a capped list of JSON entries, newest first, that lives as long as its record.
local timeline = {}

-- Add ``entry`` to the list at ``key``: trimmed only once past ``cap``; its life (its record's, ``ttl``) set with its
-- first entry.
function timeline.push(key, entry, cap, ttl)
  local length = redis.call('LPUSH', key, entry)
  if length > cap then redis.call('LTRIM', key, 0, cap - 1) end
  if length == 1 then redis.call('EXPIRE', key, ttl) end
end
