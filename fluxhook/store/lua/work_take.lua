-- Runs after fair_turns.lua. A worker's token of one kind takes the job whose turn it is.
-- KEYS[1] the kind's work line; KEYS[2] its bindings (t:<token> -> member, m:<member> -> token);
-- KEYS[3] its passes; KEYS[4] its clock; KEYS[5] owner -> weight (the slots' own).
-- ARGV[1] the token's RQ id; ARGV[2] the weight of an owner without one (owners.DEFAULT_WEIGHT).
-- Returns the member the token works on (`<owner>:<job id>`), or false when the line is empty.
--
-- A token already bound (RQ's retry of it, or its run again after its worker died) gets its own
-- member back. Otherwise the owner whose turn starts first (fair_turns.lua) gives up its earliest
-- job, and the turn costs it 1 / its weight: the same rule as the slots', one task a turn.
local line, bound, token = KEYS[1], KEYS[2], ARGV[1]
local mine = redis.call('HGET', bound, 't:' .. token)
if mine then return mine end
local turns = fair_turns(KEYS[3], KEYS[4], KEYS[5], tonumber(ARGV[2]))
local turn = turns.earliest(fair_heads(line))
if not turn then return false end
local member = fair_member(turn.owner, turn.job)
redis.call('ZREM', line, member)
turns.charge(turn.owner, 1)
-- The member was bound to a token that died for good (the sweep queued it again): that binding is void.
local before = redis.call('HGET', bound, 'm:' .. member)
if before then redis.call('HDEL', bound, 't:' .. before) end
redis.call('HSET', bound, 't:' .. token, member, 'm:' .. member, token)
return member
