-- Counts added to the fields of one hash, in one place for the scripts that count (effects.lua: a day's usage and end
-- users' counters; tally_write.lua: the metrics and the hourly counters).
local counters = {}

-- Below it a double holds every whole number exactly; a sum that reaches it is left to Redis's own HINCRBY.
counters.EXACT = 2 ^ 53

-- The value a field holds (``before``: its text, false: none) with ``amount`` added, as text; nil where Redis's own
-- command should add it.
function counters.sum(before, amount, float)
  if float then
    local value = before and tonumber(before) or (not before and 0)
    local sum = value and value + amount
    if not sum or sum ~= sum or sum == math.huge or sum == -math.huge then return nil end
    return string.format('%.17g', sum)
  end
  local value = before and string.match(before, '^-?%d+$') and tonumber(before) or (not before and 0)
  if not value or amount ~= math.floor(amount) or math.abs(value + amount) >= counters.EXACT then return nil end
  return string.format('%.0f', value + amount)
end

-- Add ``increments`` ({field, amount, float}, ...; ``float``: it adds as HINCRBYFLOAT adds, else as HINCRBY) to the
-- hash ``key``. Three fields or more are read in one HMGET and written in one HSET, where each HINCRBY is a command: a
-- job's submission counts four in its day's usage. Fewer, or one whose value or sum is no number Redis would add so
-- (not a whole number where one is asked, past counters.EXACT, not finite), each go by their own command, which adds
-- as Redis does (and refuses what it refuses). Returns whether a count started in the hash: a field that was none.
function counters.add(key, increments)
  local fields, amounts, floats = {}, {}, {}
  for _, increment in ipairs(increments) do
    local field = increment[1]
    if amounts[field] == nil then fields[#fields + 1] = field end
    amounts[field] = (amounts[field] or 0) + tonumber(increment[2])
    floats[field] = floats[field] or increment[3] or false
  end
  if #fields >= 3 then
    local read = redis.call('HMGET', key, unpack(fields))
    local write, started = {}, false
    for i, field in ipairs(fields) do
      local sum = counters.sum(read[i], amounts[field], floats[field])
      if not sum then
        write = nil
        break
      end
      write[#write + 1], write[#write + 2] = field, sum
      started = started or not read[i]
    end
    if write then
      redis.call('HSET', key, unpack(write))
      return started
    end
  end
  local started = false
  for _, field in ipairs(fields) do
    if floats[field] then
      redis.call('HINCRBYFLOAT', key, field, amounts[field])
    else
      started = redis.call('HINCRBY', key, field, amounts[field]) == amounts[field] or started
    end
  end
  return started
end
