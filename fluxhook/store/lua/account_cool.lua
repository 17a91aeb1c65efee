-- Cools an account down: no task goes through it until then. A further failure extends a cooldown,
-- never shortens it; one that lasts until the balance reads above zero (402) stays until lifted.
-- Past its end, the account is on probation (slots_prelude.lua) until a task is accepted, for at most
-- the probation's length: a failure then cools it again and ends the probe.
--
-- KEYS[1] the account's cooldown (a hash: until, reason, lasting, probe).
-- ARGV: until (epoch seconds), reason, lasting (1: until lifted, however late; 0: expires), probation (s).
-- Returns the cooldown's until as it now stands.
local current = redis.call('HMGET', KEYS[1], 'until', 'reason', 'lasting')
local new_until, reason, lasting = tonumber(ARGV[1]), ARGV[2], ARGV[3] == '1'
local old_until = tonumber(current[1])
local was_lasting = current[3] == '1'
local keep = old_until ~= nil and (old_until >= new_until or (was_lasting and not lasting))
local ends = math.max(old_until or 0, new_until)
if keep then reason = current[2] end
lasting = lasting or was_lasting
redis.call('HSET', KEYS[1], 'until', string.format('%.17g', ends), 'reason', reason, 'lasting', lasting and '1' or '0')
redis.call('HDEL', KEYS[1], 'probe')
if lasting then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIREAT', KEYS[1], math.ceil((ends + tonumber(ARGV[4])) * 1000))
end
return string.format('%.17g', ends)
