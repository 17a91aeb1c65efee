-- Free a lock only if it is still held with the token it was taken with: a holder whose lock lapsed
-- (or was lost with a Redis primary that failed over) never frees the lock another took since.
-- KEYS[1] the lock. ARGV[1] the token it was taken with. Returns 1 if freed.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
