-- How many of each app key's jobs are queued and how many active (submitted or ready), walking only
-- the active jobs (never a key's whole history).
--
-- KEYS[1] the queued jobs' index, KEYS[2] the submitted ones', KEYS[3] the ready ones'; then each key's
-- index of its jobs.
-- Returns {queued, active} per key, in KEYS' order, flattened.
local counts = {}
for k = 4, #KEYS do counts[2 * (k - 3) - 1], counts[2 * (k - 3)] = 0, 0 end
for s = 1, 3 do
  local slot = (s == 1) and 1 or 0
  for _, job in ipairs(redis.call('ZRANGE', KEYS[s], 0, -1)) do
    for k = 4, #KEYS do
      if redis.call('ZSCORE', KEYS[k], job) then
        local at = 2 * (k - 3) - slot
        counts[at] = counts[at] + 1
        break
      end
    end
  end
end
return counts
