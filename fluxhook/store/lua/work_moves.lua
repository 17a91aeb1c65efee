-- A job's work on its way from its work line into RQ (store/work_lines.py), in one place for the two scripts that take
-- it (work_take.lua, a feed; effects.lua, at once). It is noted in its kind's moving hash (member -> when taken), where
-- it counts against the RQ queue's room until the MULTI that queues its task clears it; and the job is held by a lease
-- like any of fluxhook's own work: its due time `lease` ahead. Should its mover die in between, the lease
-- lapses: the note no longer counts (dropped at the next look), and the job comes due; its check finds its work in no
-- line, note or RQ queue and puts it back in line (lifecycle/checking.py). No recovery of its own.
local work_moves = {}

-- How many notes of the moving hash still count at `now` (taken less than `lease` ago); lapsed ones are dropped.
function work_moves.counting(moving, now, lease)
  local notes = redis.call('HGETALL', moving)
  local count, lapsed = 0, {}
  for i = 1, #notes, 2 do
    if tonumber(notes[i + 1]) > now - lease then count = count + 1 else lapsed[#lapsed + 1] = notes[i] end
  end
  if #lapsed > 0 then redis.call('HDEL', moving, unpack(lapsed)) end
  return count
end

-- `item` (job `job`'s member) taken at `now`: noted as moving, the job held by its lease in the due index `due`. No
-- sweeper is woken for it (sweep_index.lua's rule, its one exception): the lease is on work in hand, due only if its
-- process dies mid-move, which the guard of a sweeper at rest finds at its next look (worker/guarding.py); a wake
-- here would cost every download a command (a stored job's 150).
function work_moves.take(moving, due, item, job, now, lease)
  redis.call('HSET', moving, item, now)
  redis.call('ZADD', due, string.format('%.3f', now + lease), job)
end
