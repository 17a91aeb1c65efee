-- A token ends with no retry coming: it lets go of its member.
-- KEYS[1] the kind's bindings; ARGV[1] the token's RQ id.
local bound, token = KEYS[1], ARGV[1]
local member = redis.call('HGET', bound, 't:' .. token)
if not member then return 0 end
redis.call('HDEL', bound, 't:' .. token)
if redis.call('HGET', bound, 'm:' .. member) == token then redis.call('HDEL', bound, 'm:' .. member) end
return 1
