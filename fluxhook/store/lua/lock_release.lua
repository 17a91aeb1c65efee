-- Free a claim only if it is still held with the value it was taken with: a holder whose claim lapsed
-- (or was lost with a Redis primary that failed over) never frees the claim another took since.
-- KEYS[1] the claim. ARGV[1] the value it was taken with. Returns 1 if freed.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
