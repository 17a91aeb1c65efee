-- How many slots each account holds in each pool (store/keys.py slot_counts: a pool's slots key -> how many it holds),
-- so a slot script reads every account's room in one HMGET, not a ZCARD a pool. A slots key's sorted set stays the
-- truth: a script that takes a slot writes the count it knows, one that gives one back takes one off, and the
-- dispatcher's look for slots past their lease counts each anew (an older release on a rolling deploy keeps no
-- count). A field missing, or one a give-back took below zero (dropped), is counted from the set and written.
local slot_counts = {}

-- The slots held in each of ``slots_keys``, in order: one HMGET; a ZCARD for each it does not hold, written back.
function slot_counts.read(counts, slots_keys)
  local found, missing = redis.call('HMGET', counts, unpack(slots_keys)), {}
  for i, key in ipairs(slots_keys) do
    if not found[i] then
      found[i] = redis.call('ZCARD', key)
      missing[#missing + 1], missing[#missing + 2] = key, found[i]
    end
    found[i] = tonumber(found[i])
  end
  if #missing > 0 then redis.call('HSET', counts, unpack(missing)) end
  return found
end

-- One slot of ``slots_key`` given back (removed from its set).
function slot_counts.freed(counts, slots_key)
  if redis.call('HINCRBY', counts, slots_key, -1) < 0 then redis.call('HDEL', counts, slots_key) end
end
