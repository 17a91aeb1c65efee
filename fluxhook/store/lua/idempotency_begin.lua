-- The first request with a key claims it; a later one learns what became of the first, all in one
-- round trip (a replay costs no other command). The claim lapses with its lease, so a process that
-- died while handling the first request does not hold the key for ever.
--
-- KEYS[1] the key's record, a hash: fingerprint, state ('pending' or 'done'), ticket while pending,
--         status and body once done.
-- ARGV[1] the request's fingerprint, ARGV[2] the claim's lease in ms, ARGV[3] the ticket that names
--         this request as the claim's holder (finish and abandon must show it).
-- Returns {'claimed'}, {'reused'} (another request under the key), {'in_use'} (the first is being
-- handled), or {'done', status, body} (the first answer, to replay).
local record = redis.call('HMGET', KEYS[1], 'fingerprint', 'state', 'status', 'body')
if not record[1] then
  redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'state', 'pending', 'ticket', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'claimed'}
end
if record[1] ~= ARGV[1] then return {'reused'} end
if record[2] ~= 'done' then return {'in_use'} end
return {'done', record[3], record[4]}
