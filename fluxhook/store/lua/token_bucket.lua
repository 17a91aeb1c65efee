-- A token bucket kept as its "theoretical arrival time" (GCRA): one value a bucket (the time, ms, at which it is full
-- again), exact over any number of processes. `cost` units are admitted while the bucket holds that many; it refills
-- one unit every `interval` ms, up to `burst` units.

local token_bucket = {}

-- How many ms until `cost` units would be admitted (0: now), and the bucket's full time once they are spent.
function token_bucket.wait(key, now, interval, burst, cost)
  local full_at = tonumber(redis.call('GET', key) or '0')
  if full_at < now then full_at = now end
  local after = full_at + cost * interval
  local over = after - now - burst * interval
  if over > 0 then
    -- At most what `cost` units take to come back: another process may have counted with a 'now' read later.
    return math.max(1, math.ceil(math.min(over, cost * interval))), after
  end
  return 0, after
end

-- Spend what `wait` admitted: the bucket is full again at `after` (and the value lives no longer).
function token_bucket.spend(key, now, after)
  redis.call('SET', key, string.format('%d', math.ceil(after)), 'PX', math.max(1, math.ceil(after - now)))
end
