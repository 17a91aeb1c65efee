-- Keeps what one priced answer of BFL teaches about a model: the highest rate, the smallest request
-- priced, the most megapixels read per input image. Only ever raises a rate or a reading and lowers
-- the smallest size, so answers applied in any order, by any number of processes, end the same.
--
-- KEYS[1] the learned prices, a hash: '<model>:rate', '<model>:smallest', '<model>:input_per_image'.
-- ARGV[1] the model, ARGV[2] the rate (micro-credits per unit), ARGV[3] the request's units,
-- ARGV[4] units read per input image, or '' when the request had none.
-- Returns the model's {rate, smallest, input_per_image or false} after.
local model = ARGV[1]
local function keep(field, value, higher)
  local old = tonumber(redis.call('HGET', KEYS[1], model .. ':' .. field) or '')
  if old == nil or (higher and value > old) or (not higher and value < old) then
    redis.call('HSET', KEYS[1], model .. ':' .. field, string.format('%.0f', value))
    return value
  end
  return old
end
local rate = keep('rate', tonumber(ARGV[2]), true)
local smallest = keep('smallest', tonumber(ARGV[3]), false)
local per_image = false
if ARGV[4] ~= '' then per_image = keep('input_per_image', tonumber(ARGV[4]), true) end
return {rate, smallest, per_image}
