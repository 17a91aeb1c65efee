-- needs: timeline, sweep_index
-- A new job record with its indexes; for a BFL task its owner already tracks (a task is tracked once per owner, each
-- owner's job its own), the id of the job tracking it.
--
-- job_record.create(at, base): ARGV[at] the spec (JSON, store/jobs.py creation), naming each key by its position in
-- KEYS after KEYS[base] (in a slot script, its own keys after its layout's): `record`, `indexes` (every job's, its
-- status's, and its model's and its app key's when it has them), `due_index`, with a bfl_id either `trackers` (a
-- tracked job's: the jobs tracking that task, by owner) or `bfl_task` (the index of the job fluxhook submitted as
-- that task), `models` (the set of model names, when it has a model); with `hold`, an Idempotency-Key's hold that
-- asked for the job: its `record` and its caller's live keys (`callers`), see idempotency_begin.lua. Its values:
-- `id`, `bfl_id` ('' = none), `due` ('' = not due), `ttl` in s ('' = none), `owner` (a tracked job's app key id,
-- or 'admin'), `replace` (the index's job is gone: this one replaces it), `model` ('' = none), `channel` (where it
-- is announced; none: not announced, as a batch's items are not); with a deadline, `deadlines` (that index) and
-- `deadline` (its score); `sweep_added`, the sweepers' wake-up (store/wakes.py), pushed when the job is the first in
-- the due or deadline index (a sweeper at rest waits for it); `waiting`, the timeline entry
-- (effects.lua's) that says why a job made in line waits (job_record.note_wait). ARGV[at + 1...]: the record's
-- field/value pairs. Returns the id of the job made, or of the job tracking the task, and the spec as read; false
-- (nothing made) when the hold's key is another request's now.
local job_record = {}

function job_record.create(at, base)
  local spec = cjson.decode(ARGV[at])
  local function key(n) return KEYS[base + n] end
  local id = spec.id
  local hold = spec.hold
  if hold then
    -- A hold another request has now (a retry took the key once this one's hold lapsed, by its lease or with the
    -- primary it was taken on) has that request's job, or will: this one makes none, so none is sent twice.
    local held = redis.call('HMGET', key(hold.record), 'fingerprint', 'ticket')
    if held[1] and (held[1] ~= hold.fingerprint or held[2] ~= hold.ticket) then return false, spec end
  end
  local existing
  if spec.trackers then existing = redis.call('HGET', key(spec.trackers), spec.owner)
  elseif spec.bfl_task then existing = redis.call('GET', key(spec.bfl_task)) end
  if existing and existing ~= id and not spec.replace then return existing, spec end
  if spec.trackers then redis.call('HSET', key(spec.trackers), spec.owner, id)
  elseif spec.bfl_task then redis.call('SET', key(spec.bfl_task), id) end
  redis.call('HSET', key(spec.record), unpack(ARGV, at + 1, #ARGV))
  for _, index in ipairs(spec.indexes) do redis.call('ZADD', key(index), 0, id) end
  if spec.model ~= '' then redis.call('SADD', key(spec.models), spec.model) end
  if spec.due ~= '' then sweep_index.add(key(spec.due_index), key(spec.sweep_added), spec.due, id) end
  if spec.deadlines then sweep_index.add(key(spec.deadlines), key(spec.sweep_added), spec.deadline, id) end
  -- A new job is announced like a change of one (job_transition.lua): the streams of its owner show it.
  if spec.channel then redis.call('PUBLISH', spec.channel, id) end
  if hold then
    -- The hold names its job in the same step as the job is made, so a repeat of the request finds the job,
    -- whatever becomes of the first request. A hold that is gone was on a primary that failed over before
    -- it reached this one: made again here.
    local record, callers = key(hold.record), key(hold.callers)
    redis.call('HSET', record, 'fingerprint', hold.fingerprint, 'state', 'pending', 'ticket', hold.ticket,
               'until', hold['until'], 'primary', hold.primary, 'job', id)
    local lives, now = tonumber(hold.lives), tonumber(hold.now)
    redis.call('PEXPIRE', record, lives)
    redis.call('ZADD', callers, now + lives, record)
    redis.call('PEXPIRE', callers, lives)
  end
  if spec.ttl ~= '' then
    redis.call('EXPIRE', key(spec.record), spec.ttl)
    if spec.bfl_task then redis.call('EXPIRE', key(spec.bfl_task), spec.ttl) end
    -- Never shortened: another owner's job of the task may have been made later.
    if spec.trackers and redis.call('TTL', key(spec.trackers)) < tonumber(spec.ttl) then
      redis.call('EXPIRE', key(spec.trackers), spec.ttl)
    end
  end
  return id, spec
end

-- The job made by job_record.create(at, base) (``spec``, as it read it) waits in line: the spec's `waiting` entry goes
-- on its timeline with what holds it back (``line``, slots_waits.state), from which a reader names the reason
-- (core/wait_reasons.py), as the job's maker does from the same state.
function job_record.note_wait(spec, base, line)
  local waiting = spec.waiting
  if not waiting then return end
  local entry = cjson.decode(waiting.entry)
  entry.line = line
  timeline.push(KEYS[base + waiting.timeline], cjson.encode(entry), waiting.cap, waiting.ttl)
end
