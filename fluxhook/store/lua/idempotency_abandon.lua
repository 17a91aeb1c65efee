-- Gives the key up (the request failed on our side, with a 5xx): the client may retry with it. Only
-- the claim's holder may, so a request that outlived its lease cannot free a newer claim.
--
-- KEYS[1] the key's record (see idempotency_begin.lua).
-- ARGV[1] the request's ticket.
-- Returns 1 if the claim was this request's and is gone, else 0.
local record = redis.call('HMGET', KEYS[1], 'ticket', 'state')
if record[1] ~= ARGV[1] or record[2] ~= 'pending' then return 0 end
redis.call('DEL', KEYS[1])
return 1
