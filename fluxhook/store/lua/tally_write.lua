-- needs: counters
-- Writes one batch of a process's tallied counts (effects.Tallies), once: a batch whose answer was lost is sent
-- again with the same id, and the process's marks say it was written, so it never counts twice.
--
-- KEYS[1] the process's marks (a hash: batch id -> 1), KEYS[2] the metrics hash, then the hourly counters' hashes.
-- ARGV[1] how long the marks live (s), ARGV[2] the number c of batches whose answer came (their marks go), then
-- their c ids; then the batch's id, the number n of metrics fields, and n triples (field, amount, 'f' for a float
-- or 'i' for a whole number); then for each hourly hash (KEYS[2 + h]): its TTL, its number of fields m, and m pairs
-- (field, amount).
-- Returns 1 if written now, 0 if it was written before.
local marks, ttl = KEYS[1], ARGV[1]
local at = 2
for _ = 1, tonumber(ARGV[2]) do
  at = at + 1
  redis.call('HDEL', marks, ARGV[at])
end
local batch = ARGV[at + 1]
local fresh = redis.call('HSETNX', marks, batch, 1) == 1
redis.call('EXPIRE', marks, ttl)
if not fresh then return 0 end
at = at + 2
local metrics = {}
for i = 1, tonumber(ARGV[at]) do
  metrics[i] = {ARGV[at + 1], ARGV[at + 2], ARGV[at + 3] == 'f'}
  at = at + 3
end
if #metrics > 0 then counters.add(KEYS[2], metrics) end
for h = 3, #KEYS do
  local hour_ttl, count = ARGV[at + 1], tonumber(ARGV[at + 2])
  at = at + 2
  local hours = {}
  for i = 1, count do
    hours[i] = {ARGV[at + 1], ARGV[at + 2]}
    at = at + 2
  end
  -- Its life is set when a count starts in it (a field that was none), as the usage counters' (effects.lua).
  if counters.add(KEYS[h], hours) then redis.call('EXPIRE', KEYS[h], hour_ttl) end
end
return 1
