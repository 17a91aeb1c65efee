-- One read (any request of an app key but a submission) against its read rate (reads_per_minute, else READS_PER_MINUTE): a
-- token bucket kept as its "theoretical arrival time" (GCRA), one value a key, exact over any number of web
-- processes. A read costing `cost` units is admitted while the key's bucket holds that many; it refills at the
-- rate, up to `burst`.
--
-- KEYS[1] the key's read clock (a string: the time, ms, at which its bucket is full again).
-- ARGV[1] now (ms), ARGV[2] ms a unit takes to come back (60,000 / the rate), ARGV[3] burst (units),
-- ARGV[4] cost (units, at most burst), ARGV[5] '1': a cost already spent (a search's cold reads), counted whatever the
-- bucket holds, so the key's next reads wait until it is paid back.
-- Returns 0 if admitted (and counted), else how many ms until it would be (nothing counted).
local now, interval = tonumber(ARGV[1]), tonumber(ARGV[2])
local burst, cost = tonumber(ARGV[3]), tonumber(ARGV[4])
local full_at = tonumber(redis.call('GET', KEYS[1]) or '0')
if full_at < now then full_at = now end
local after = full_at + cost * interval
-- Admitted while what it spends fits the bucket: its full time at most `burst` units ahead of now.
local over = after - now - burst * interval
if over > 0 and ARGV[5] ~= '1' then
  -- At most what `cost` units take to come back: another process may have counted with a 'now' read later.
  return math.max(1, math.ceil(math.min(over, cost * interval)))
end
redis.call('SET', KEYS[1], string.format('%d', math.ceil(after)), 'PX', math.max(1, math.ceil(after - now)))
return 0
