-- needs: slot_holders
-- The migration's move of slot holders kept by releases before one entry per holder: the account whose slot a job
-- holds (KEYS[1]), its owner (KEYS[2]; none: the admin owner) and its turn's charge (KEYS[3]; none: 0) become its
-- entry in KEYS[4] (slot_holders.lua); an entry already there is today's, left as it is.
-- ARGV[1] the admin owner, then the job ids. Returns how many were moved.
local moved = 0
for i = 2, #ARGV do
  local job = ARGV[i]
  local account = redis.call('HGET', KEYS[1], job)
  if account then
    local owner = redis.call('HGET', KEYS[2], job) or ARGV[1]
    local charge = tonumber(redis.call('HGET', KEYS[3], job)) or 0
    if redis.call('HSETNX', KEYS[4], job, slot_holders.value(account, owner, charge)) == 1 then moved = moved + 1 end
    redis.call('HDEL', KEYS[1], job)
    redis.call('HDEL', KEYS[2], job)
    redis.call('HDEL', KEYS[3], job)
  end
end
return moved
