-- A batch's items against the requests_per_minute and max_queued of each end user they are for, checked for every
-- end user first and then taken for all, in one step: the batch is refused whole or taken whole, as its key's own
-- queue takes it (queue_room.lua), and no number of processes together passes a limit. Each item counts as one of
-- its end user's requests (a member of its window, as end_user_take.lua counts a job) and, under a max_queued, as one
-- of its queued jobs (its job's id, made before the items are: the ids are pruned as end_user_take.lua's are).
-- Judged before anything is taken, so a refusal counts nothing.
--
-- KEYS: for each end user in ARGV's order, its submissions of the last window, then its queued jobs.
-- ARGV[1] now (ms), ARGV[2] the window (ms), ARGV[3] a prefix unique to this request (a member is
-- '<prefix>:<end user's place>:<n>'), ARGV[4] how long the queued ids are kept after the last is added (ms),
-- ARGV[5] how many end users; then for each: its requests_per_minute (0: none), its max_queued (0: none), its items,
-- and, with a max_queued, as many ids of its items' jobs.
-- Returns {0} taken; {3, place, ms until enough leave its window (0: never: more items than its limit)} rate limited;
-- {4, place, its limit, its queued ids...} its queue is too full (the caller prunes those that left it and asks again).
-- A place is the end user's, from 1, in ARGV's order.
local now, window, prefix, life = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local users = {}
local at = 6
for place = 1, tonumber(ARGV[5]) do
  local rate, queue, items = tonumber(ARGV[at]), tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  local ids = {}
  if queue > 0 then
    for n = 1, items do ids[n] = ARGV[at + 2 + n] end
    at = at + items
  end
  at = at + 3
  users[place] = {rate = rate, queue = queue, items = items, ids = ids,
                  requests = KEYS[2 * place - 1], queued = KEYS[2 * place]}
end

for place, user in ipairs(users) do
  if user.rate > 0 then
    if user.items > user.rate then return {3, place, 0} end
    redis.call('ZREMRANGEBYSCORE', user.requests, '-inf', now - window)
    local over = redis.call('ZCARD', user.requests) + user.items - user.rate
    if over > 0 then
      -- Its items fit once `over` of its requests left the window: the over-th oldest leaves last.
      local last = redis.call('ZRANGE', user.requests, over - 1, over - 1, 'WITHSCORES')
      return {3, place, math.min(window, math.max(1, tonumber(last[2]) + window - now))}
    end
  end
  if user.queue > 0 and redis.call('ZCARD', user.queued) + user.items > user.queue then
    local refused = {4, place, user.queue}
    for _, id in ipairs(redis.call('ZRANGE', user.queued, 0, -1)) do refused[#refused + 1] = id end
    return refused
  end
end

-- ZADD's arguments a call at most: Lua's stack has room for a few thousand.
local CHUNK = 500
local function add_all(key, members)
  for first = 1, #members, 2 * CHUNK do
    redis.call('ZADD', key, unpack(members, first, math.min(#members, first + 2 * CHUNK - 1)))
  end
end

for place, user in ipairs(users) do
  if user.rate > 0 then
    local members = {}
    for n = 1, user.items do
      members[#members + 1] = now
      members[#members + 1] = prefix .. ':' .. place .. ':' .. n
    end
    add_all(user.requests, members)
    redis.call('PEXPIRE', user.requests, window)
  end
  if user.queue > 0 then
    local members = {}
    for _, id in ipairs(user.ids) do
      members[#members + 1] = now
      members[#members + 1] = id
    end
    add_all(user.queued, members)
    redis.call('PEXPIRE', user.queued, life)
  end
end
return {0}
