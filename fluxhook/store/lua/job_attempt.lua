-- A job's record as it is (HGETALL's list), with one more attempt of a kind (attempts.<counter>) counted in it and in
-- the answer when its status is the one named: the read a task starts with and its count, in one step. An empty
-- list if the job is gone (a deleted job is never recreated by a late counter).
-- KEYS[1] the job record. ARGV[1] the counter's field, ARGV[2] the status an attempt is counted in.
local fields = redis.call('HGETALL', KEYS[1])
local status, counted
for i = 1, #fields, 2 do
  if fields[i] == 'status' then status = fields[i + 1] end
  if fields[i] == ARGV[1] then counted = i + 1 end
end
if status ~= ARGV[2] then return fields end
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if counted then
  fields[counted] = tostring(n)
else
  fields[#fields + 1], fields[#fields + 2] = ARGV[1], tostring(n)
end
return fields
