-- needs: token_bucket
-- Items (jobs and batch items) an app key creates, against its `items_per_minute` (a token bucket whose burst holds
-- one batch of the largest size) and its `items_per_day` (a count of the UTC day): what a key can make Redis hold is
-- bounded by its limits. Both are judged before either is spent, so a refusal counts nothing.
--
-- KEYS[1] the key's items bucket (token_bucket.lua), KEYS[2] its count of the day (expires after the day).
-- ARGV[1] now (ms), ARGV[2] ms an item takes to come back (60,000 / the rate), ARGV[3] burst (items), ARGV[4] the
-- items asked for (at most burst), ARGV[5] the day's limit, ARGV[6] ms until the day ends, ARGV[7] ms the day's count outlives the day.
-- Returns {0, 0} if admitted (and counted); {1, ms} refused by the minute's rate, {2, ms} by the day's limit, ms being
-- how long until it would be admitted.
local now, interval, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local day_limit, day_left = tonumber(ARGV[5]), tonumber(ARGV[6])
if tonumber(redis.call('GET', KEYS[2]) or '0') + cost > day_limit then return {2, day_left} end
local wait, after = token_bucket.wait(KEYS[1], now, interval, burst, cost)
if wait > 0 then return {1, wait} end
token_bucket.spend(KEYS[1], now, after)
redis.call('INCRBY', KEYS[2], cost)
redis.call('PEXPIRE', KEYS[2], day_left + tonumber(ARGV[7]))
return {0, 0}
