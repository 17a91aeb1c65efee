-- needs: token_bucket
-- One read (any request of an app key but a submission) against its read rate (reads_per_minute, else
-- READS_PER_MINUTE): a token bucket (token_bucket.lua), one value a key, exact over any number of web processes.
--
-- KEYS[1] the key's read clock (a string: the time, ms, at which its bucket is full again).
-- ARGV[1] now (ms), ARGV[2] ms a unit takes to come back (60,000 / the rate), ARGV[3] burst (units),
-- ARGV[4] cost (units, at most burst), ARGV[5] '1': a cost already spent (a search's cold reads), counted whatever the
-- bucket holds, so the key's next reads wait until it is paid back.
-- Returns 0 if admitted (and counted), else how many ms until it would be (nothing counted).
local now, interval = tonumber(ARGV[1]), tonumber(ARGV[2])
local wait, after = token_bucket.wait(KEYS[1], now, interval, tonumber(ARGV[3]), tonumber(ARGV[4]))
if wait > 0 and ARGV[5] ~= '1' then return wait end
token_bucket.spend(KEYS[1], now, after)
return 0
