-- Gives the key up (the request failed on our side): the client may retry with it.
-- KEYS[1] the key's record. ARGV[1] the fingerprint. Returns 1 if the claim was this request's.
local record = redis.call('HMGET', KEYS[1], 'fingerprint', 'state')
if record[1] ~= ARGV[1] or record[2] ~= 'pending' then return 0 end
redis.call('DEL', KEYS[1])
return 1
