-- The first request with a key holds it; a later one learns what became of the first, all in one
-- round trip (a replay costs no other command). The hold lapses with its lease, so a process that
-- died while handling the first request does not hold the key for ever. What one caller (one bearer
-- token) can make Redis keep is bounded: past ARGV[4] live keys it is told when the oldest goes.
--
-- A hold also lapses once the primary it was taken on is replaced: its request began its writes there, so it is
-- never acknowledged (its confirmation compares the primary), and its release may have been lost with that
-- primary, the hold having reached the new one before the switch. The retry then makes the job, or gets the one
-- the first request made.
--
-- KEYS[1] the key's record, a hash: fingerprint, state ('pending' or 'done'), ticket while pending,
--         until when the hold lasts (ms), the primary it was taken on (its replication id, '' unknown), the job
--         the request made once it made one (job_create.lua), status and body once done.
-- KEYS[2] the caller's live keys, a sorted set: record name -> when it goes (ms).
-- ARGV[1] the request's fingerprint, ARGV[2] the hold's lease in ms, ARGV[3] the ticket that names
--         this request as the key's holder (finish and abandon must show it), ARGV[4] how many
--         keys one caller may hold, ARGV[5] now (ms), ARGV[6] how long an answer is kept (ms),
--         ARGV[7] the primary this request began on ('' when acknowledgements wait for no replica).
-- Returns {'held'}, {'reused'} (another request under the key), {'in_use'} (the first is being
-- handled), {'made', job id} (the first made that job, then failed or died before its answer was kept:
-- answer with the job),
-- {'done', status, body} (the first answer, to replay), or {'full', ms until a key goes}.
local record = redis.call('HMGET', KEYS[1], 'fingerprint', 'state', 'status', 'body', 'job', 'ticket', 'until',
                          'primary')
local now = tonumber(ARGV[5])
if record[1] then
  if record[1] ~= ARGV[1] then return {'reused'} end
  if record[2] == 'done' then return {'done', record[3], record[4]} end
  -- A hold with no primary named is one taken before holds named it: held as before.
  local held = record[6] and tonumber(record[7] or 0) > now and (not record[8] or record[8] == ARGV[7])
  if held then return {'in_use'} end
  if record[5] then return {'made', record[5]} end
  -- A hold that lapsed with its primary and made no job: this request's now (it counts among the caller's keys).
else
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {'full', tostring(math.max(1, tonumber(oldest[2]) - now))}
  end
end
redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'state', 'pending', 'ticket', ARGV[3],
           'until', now + tonumber(ARGV[2]), 'primary', ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), KEYS[1])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[6]) + tonumber(ARGV[2]))
return {'held'}
