-- Items admitted by app_key_take_items.lua that were not made after all (their request was refused afterwards): they
-- count nothing, against the minute's bucket or the day's count.
--
-- KEYS[1] the key's items bucket (token_bucket.lua), KEYS[2] its count of the day.
-- ARGV[1] now (ms), ARGV[2] ms an item takes to come back, ARGV[3] the items given back.
local now, interval, items = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local full_at = tonumber(redis.call('GET', KEYS[1]) or '0') - items * interval
if full_at > now then
  redis.call('SET', KEYS[1], string.format('%d', math.ceil(full_at)), 'PX', math.max(1, math.ceil(full_at - now)))
else
  redis.call('DEL', KEYS[1])
end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= items then redis.call('DECRBY', KEYS[2], items) end
return 0
