-- needs: fair_turns
-- The rule of slot time, shared by every script that gives a slot back (slots_prelude.lua,
-- job_transition.lua): an owner's turn is charged an estimate when it takes the slot (its recent
-- average), and settled when the slot is given back, to the seconds it was held; a slot
-- given back before its task reached BFL costs nothing. So a key of minute-long tasks gets the
-- same share of slot time as a key of second-long ones, not the same number of tasks. The estimate is
-- the owner's own in the pool (the running average of its tasks' times there): one key's videos and
-- another's images in one pool are each charged what theirs take. The estimates are kept beside the owners' passes,
-- each in a field '~<pool's slots key>|<owner>' (no owner id holds a '~', store/owners.py): a slot given back reads
-- and writes its owner's pass and estimate in one command each.
local slot_time = {}
slot_time.FIRST_ESTIMATE = 10   -- s, the estimate before any of the owner's tasks in the pool ended: an image's time
slot_time.MIN_TURN = 0.1        -- s: a turn costs at least this, so that owners of instant tasks still alternate
slot_time.ESTIMATE_WEIGHT = 0.2 -- of each task just ended, in the running average

function slot_time.estimate_field(slots, owner)
  return '~' .. slots .. '|' .. owner
end

-- What the owner's turn at the slots is charged as it takes one: its estimate there (``kept``: as read with its pass,
-- fair_turns' ``also``, false for none; nil: read now).
function slot_time.estimate(passes, slots, owner, kept)
  if kept == nil then kept = redis.call('HGET', passes, slot_time.estimate_field(slots, owner)) end
  return math.max(tonumber(kept) or slot_time.FIRST_ESTIMATE, slot_time.MIN_TURN)
end

-- f: the fair-share keys {passes, weights} and default_weight. ``charged``: what the owner's turn was
-- charged when it took the slot (its slot holder's entry, slot_holders.lua). ``held`` seconds are charged in its
-- place, nil when the task never reached BFL (then nothing is); ``learned``: whether they are a task's whole time at
-- BFL, for the owner's average in the pool; ``weight``: the owner's weight its turn was charged by (nil: read now);
-- ``mark``: the pass of the owner's end user the turn charged (its slot holder's, fair_turns.lua), settled alike (an
-- end user weighs 1 there) while that very pass is kept, in the same read and write.
function slot_time.settle(f, slots, owner, charged, held, learned, weight, mark)
  local used = held and math.max(held, slot_time.MIN_TURN) or 0
  if not owner then return end
  local w = weight or tonumber(redis.call('HGET', f.weights, owner))
  if w == nil or w <= 0 then w = f.default_weight end
  local fields = {owner}
  local field = learned and slot_time.estimate_field(slots, owner)
  if field then fields[#fields + 1] = field end
  local tag, born
  if mark then tag, born = string.match(mark, '^([^@]*)@(.*)$') end
  local inner = tag and fair_turns.inner_field(owner, tag)
  if inner then fields[#fields + 1] = inner end
  local read = #fields > 1 and redis.call('HMGET', f.passes, unpack(fields)) or {redis.call('HGET', f.passes, owner)}
  local write = {owner, string.format('%.17g', tonumber(read[1] or 0) + (used - charged) / w)}
  if field then
    local average = tonumber(read[2])
    average = average and (average + (used - average) * slot_time.ESTIMATE_WEIGHT) or used
    write[#write + 1], write[#write + 2] = field, string.format('%.17g', average)
  end
  local its, its_born = fair_turns.inner_value(inner and read[#fields])
  if its and its_born == born then
    write[#write + 1], write[#write + 2] = inner, string.format('%.17g', its + used - charged) .. '@' .. born
  end
  redis.call('HSET', f.passes, unpack(write))
end
