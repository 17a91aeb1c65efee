-- Takes up to ARGV[2] members scored at most ARGV[1] (now), oldest first, and scores each ARGV[3]
-- (the claim: when it comes due again if nobody checks it). Two sweeps never take the same member.
-- KEYS[1] the due index, the notification outbox, or the batches being canceled.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[3], id) end
return ids
