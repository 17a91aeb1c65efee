-- The migration's account for slots taken before accounts were kept: a holder of one of the default
-- account's slots with no account recorded is given ARGV[1]'s, the one its submission goes through, and moved
-- into that account's slots (same time taken) if they are not the same; one with no owner is given the admin
-- owner, and counted among the slots it holds. A holder with an account recorded, or with its one entry (KEYS[6],
-- slot_holders.lua), is today's: left as it is.
--
-- KEYS[1] the default account's slots of a pool, KEYS[2] the account's slots of that pool, KEYS[3] job ->
-- the account whose slot it holds, KEYS[4] job -> owner, KEYS[5] owner -> slots held, KEYS[6] job -> slot holder's
-- entry, KEYS[7] the counts of slots held (slot_counts.lua): the two sets' are dropped with a move, to be made anew
-- from the sets when next read.
-- ARGV[1] the account, ARGV[2] the admin owner, then the job ids.
-- Returns how many were given their account.
local given = 0
for i = 3, #ARGV do
  local job = ARGV[i]
  local taken = redis.call('ZSCORE', KEYS[1], job)
  if taken and redis.call('HEXISTS', KEYS[3], job) == 0 and redis.call('HEXISTS', KEYS[6], job) == 0 then
    if KEYS[1] ~= KEYS[2] then
      redis.call('ZREM', KEYS[1], job)
      redis.call('ZADD', KEYS[2], taken, job)
      redis.call('HDEL', KEYS[7], KEYS[1], KEYS[2])
    end
    redis.call('HSET', KEYS[3], job, ARGV[1])
    if not redis.call('HGET', KEYS[4], job) then
      redis.call('HSET', KEYS[4], job, ARGV[2])
      redis.call('HINCRBY', KEYS[5], ARGV[2], 1)
    end
    given = given + 1
  end
end
return given
