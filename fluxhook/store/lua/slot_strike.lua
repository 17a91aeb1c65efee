-- BFL refused a submission of the pool at the account: one more refusal in a row, unless the pool's pause already
-- runs. A refusal that lands during the pause answers a submission sent before it (several in flight meet BFL's
-- window at once): counted with the first, or one burst of refusals would read as many rounds and push the backoff to
-- its ceiling while BFL's Retry-After asks for a second.
-- KEYS[1] the pool's strikes at the account, KEYS[2] its pause. ARGV[1] how long the count is kept (seconds).
-- Returns the refusals in a row.
if redis.call('EXISTS', KEYS[2]) == 1 then
  local count = tonumber(redis.call('GET', KEYS[1]) or '0')
  if count > 0 then return count end
end
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return count
