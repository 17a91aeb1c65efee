-- The first request with a key claims it; a later one learns what became of the first.
-- KEYS[1] the key's record. ARGV: the request's fingerprint, the claim's lease in ms.
-- Returns {'claimed'}, {'reused'} (another body), {'in_use'} (the first is being handled),
-- or {'done', status, body} (the first answer, to replay).
local record = redis.call('HMGET', KEYS[1], 'fingerprint', 'state', 'status', 'body')
if not record[1] then
  redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'state', 'pending')
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'claimed'}
end
if record[1] ~= ARGV[1] then return {'reused'} end
if record[2] ~= 'done' then return {'in_use'} end
return {'done', record[3], record[4]}
