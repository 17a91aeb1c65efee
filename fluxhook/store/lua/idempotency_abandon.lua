-- Gives the key up (the request failed, or kept no answer): the client may retry with it. Only the
-- request that holds it may, so a request that outlived its lease cannot free a newer hold. A hold that
-- made a job which still exists is kept, naming it: the retry answers with that job, not a second.
--
-- KEYS[1] the key's record (see idempotency_begin.lua), KEYS[2] the caller's live keys, KEYS[3] the
-- record of the job the hold names (any key when it names none).
-- ARGV[1] the request's ticket.
-- Returns 1 if the hold was this request's and is given up, else 0.
local record = redis.call('HMGET', KEYS[1], 'ticket', 'state', 'job')
if record[1] ~= ARGV[1] or record[2] ~= 'pending' then return 0 end
if record[3] and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HDEL', KEYS[1], 'ticket')
  return 1
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], KEYS[1])
return 1
