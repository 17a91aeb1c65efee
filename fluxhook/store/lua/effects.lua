-- needs: members, account_standing, fair_turns, timeline, work_moves, counters
-- The one routine that does effects (store/effects.py encodes them): prepended to every script that
-- applies some. Each effect names its keys by position in KEYS.
local effects = {}

-- Whether a job's work goes straight to RQ's door, taken as work_take.lua would take it: no line of any kind holds work
-- (so its turn is now, whatever the order of kinds and owners) and its RQ queue has room, less what this step took at
-- once before (``handed``: its kind, its member, ...; every kind's tasks go to the one queue). Its job is then held by
-- its move's lease (work_moves.lua) while its caller queues its task (store/work_lines.py), its owner charged its
-- turn: no wake-up, no dispatcher's feed take.
function effects.at_once(effect, owner, handed)
  local lines = {}
  for i, key in ipairs(effect.lines) do lines[i] = KEYS[key] end
  if redis.call('EXISTS', unpack(lines)) > 0 then return false end
  if redis.call('LLEN', KEYS[effect.queue]) + #handed / 2 >= effect.ahead then return false end
  work_moves.take(KEYS[effect.due], effect.job, tonumber(effect.now), effect.lease)
  fair_turns.new(KEYS[effect.passes], KEYS[effect.weights], effect.default_weight).charge(owner, 1)
  return true
end

-- ``records`` (optional): record key -> {its key_id, its status, its batch_id, its deadline, its end_user} as the caller's script read them (a transition's own
-- job), so a work line's effect for that job reads nothing again.
-- Returns the work taken at once for RQ (effects.at_once), as a flat list: its kind, its member, and so on.
function effects.apply(list, records)
  local handed = {}
  for _, effect in ipairs(list) do
    if effect.timeline then
      timeline.push(KEYS[effect.timeline], effect.entry, effect.cap, effect.ttl)
    elseif effect.counters then
      -- Their life is set when a count starts in them (a field that was none): a day's counters change on that day
      -- and the few after, so that is their first change, give or take days of their 400. An effect with no ttl
      -- counts in a hash whose life is set already.
      if counters.add(KEYS[effect.counters], effect.increments) and effect.ttl then
        redis.call('EXPIRE', KEYS[effect.counters], effect.ttl)
      end
    elseif effect.accepted then
      local strikes = {}
      for i, key in ipairs(effect.strikes) do strikes[i] = KEYS[key] end
      account_standing.accepted(KEYS[effect.accepted], strikes, effect.now)
    elseif effect.release then
      redis.call('HDEL', KEYS[effect.release], effect.member)
    elseif effect.ended then
      -- A job the account ran ended: its balance read before now is read again (credits/balance.py).
      redis.call('HSET', KEYS[effect.ended], effect.account, effect.at)
    elseif effect.wake_aside then
      -- Its end user's jobs waiting aside for a place at BFL come due now (never later than they were), a sweeper woken.
      local woken = 0
      for _, range in ipairs(effect.ranges) do
        for _, item in ipairs(redis.call('ZRANGEBYLEX', KEYS[effect.wake_aside], range[1], range[2])) do
          woken = woken + redis.call('ZADD', KEYS[effect.due], 'XX', 'LT', 'CH', effect.now,
                                     members.member_job(effect.owner, item))
        end
      end
      if woken > 0 then
        redis.call('LPUSH', KEYS[effect.wake], 1)
        redis.call('LTRIM', KEYS[effect.wake], 0, 0)
      end
    elseif effect.work then
      -- A job's member in a work line (store/work_lines.py): its owner is its app key, or the admin owner.
      -- A record always has a status: none, and the job is gone.
      -- A batch item's member is its bulk form, ranked by its deadline (members.lua): its key's single jobs go first in
      -- its owner's turns, then the earliest deadline.
      local known = records and records[KEYS[effect.record]]
      local key_id, status, batch, deadline, end_user
      if known then key_id, status, batch, deadline, end_user = known[1], known[2], known[3], known[4], known[5]
      else
        key_id, status, batch, deadline, end_user = unpack(redis.call('HMGET', KEYS[effect.record], 'key_id', 'status',
                                                                      'batch_id', 'deadline', 'end_user'))
      end
      if status then
        local owner = (key_id and key_id ~= '') and key_id or effect.admin
        local item = members.member(owner, effect.job, batch and batch ~= '', deadline, end_user)
        if effects.at_once(effect, owner, handed) then
          handed[#handed + 1] = effect.kind
          handed[#handed + 1] = item
        else
          redis.call('ZADD', KEYS[effect.work], 'NX', 0, item)
          -- Wakes one worker's dispatcher, whose feed moves it into RQ in its turn; one item is enough to wake it.
          if redis.call('LPUSH', KEYS[effect.wake], 1) > 1 then redis.call('LTRIM', KEYS[effect.wake], 0, 0) end
        end
      end
    end
  end
  return handed
end
