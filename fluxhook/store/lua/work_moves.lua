-- A job's work on its way from its work line into RQ (store/work_lines.py), in one place for the two scripts that take
-- it (work_take.lua, a feed; effects.lua, at once). Its job is held by a lease like any of fluxhook's own work: its due
-- time `lease` ahead, which the MULTI that queues its RQ task leaves for its check (a download) or drops (a draft
-- cache). Should its mover die in between, the lease lapses and the job comes due; its check finds its work in no
-- line or RQ queue and puts it back in line (lifecycle/checking.py). Nothing else notes it: no recovery of its own.
local work_moves = {}

-- Job `job`'s work taken at `now`: the job held by its lease in the due index `due`. No sweeper is woken for it
-- (sweep_index.lua's rule, its one exception): the lease is on work in hand, due only if its process dies mid-move,
-- which the guard of a sweeper at rest finds at its next look (worker/guarding.py); a wake here would cost every
-- download a command (a stored job's 150).
function work_moves.take(due, job, now, lease)
  redis.call('ZADD', due, string.format('%.3f', now + lease), job)
end
