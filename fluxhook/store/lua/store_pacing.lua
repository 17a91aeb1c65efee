-- Sends paced by storage (core/pacing.py, the same rule): whether new sends to BFL wait for storage, from the results
-- BFL finished that fluxhook has not stored (the ready jobs' index) and the results stored over the last minute
-- (store/pacing.py's counts, all workers together).
--
-- KEYS[1] the ready jobs' index, KEYS[2] this minute's stored counts, KEYS[3] the minute before's, KEYS[4] the mark
-- that sends wait for storage (read by the slot scripts), KEYS[5] the dispatchers' wake-up (slots:freed).
-- ARGV[1] now, ARGV[2] the share of the shortest URL life the backlog may take to store (0: off), ARGV[3] that life
-- (s), ARGV[4] the backlog below which nothing is judged, ARGV[5] how long the mark lives unless judged again (ms),
-- ARGV[6] the window the rate is taken over (s), ARGV[7] the least span a rate is taken over (s), ARGV[8] '1' to
-- judge (set or lift the mark), '0' to read only.
-- Returns {what waits ('': nothing, 'bulk': batch items, 'all': every send), the backlog, the results stored in the
-- window, the span they were stored over, when batch items may go again ('' unknown)}: numbers as text, every digit
-- kept. The mark is '<until>|<backlog>|<rate>|<what waits>'.
-- Lifting the mark, or lowering it from every send to batch items, wakes a dispatcher in the same step: the jobs it
-- held go as the backlog drains, with no wait of their own.
local now, share, life, floor = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local window, min_span, judge = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8] == '1'
local function fmt(x) return string.format('%.17g', x) end

local waiting = redis.call('ZCARD', KEYS[1])
-- Below the floor nothing is judged, and no rate is read to judge it by (a reading for /metrics reads it all the same).
local stored, oldest = 0, nil
if waiting >= floor or not judge then
  for _, key in ipairs({KEYS[2], KEYS[3]}) do
    local counts = redis.call('HGETALL', key)
    for i = 1, #counts, 2 do
      local at = tonumber(counts[i])
      if at and at >= now - window then
        stored = stored + tonumber(counts[i + 1])
        oldest = math.min(oldest or at, at)
      end
    end
  end
end
local span = oldest and math.min(window, math.max(0, now - oldest)) or 0
local rate = stored > 0 and stored / math.max(span, min_span) or 0
local bound = share * life
local holds = share > 0 and waiting > 0 and waiting >= floor and (rate == 0 or waiting / rate >= bound)
-- Single jobs wait only past halfway from the bound to the whole life (core/pacing.py's single_bound).
local level = ''
if holds then
  level = (rate == 0 or waiting / rate >= (share + 1) / 2 * life) and 'all' or 'bulk'
end
local go_at = ''
if holds and rate > 0 then
  go_at = fmt(now + math.max(0, (waiting - math.max(bound * rate, floor)) / rate))
end
if judge then
  local before = redis.call('GET', KEYS[4])
  if holds then
    redis.call('SET', KEYS[4], go_at .. '|' .. waiting .. '|' .. fmt(rate) .. '|' .. level, 'PX', ARGV[5])
  elseif before then
    redis.call('DEL', KEYS[4])
  end
  -- Fewer sends wait than did: a dispatcher looks at the lines now.
  local was = before and (string.match(before, '|([^|]*)$') or 'all') or ''
  if was ~= level and (was == 'all' or level == '') then
    if redis.call('LPUSH', KEYS[5], 1) > 1 then redis.call('LTRIM', KEYS[5], 0, 0) end
  end
end
return {level, waiting, stored, fmt(span), go_at}
