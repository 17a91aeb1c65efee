-- needs: queue_room
-- An app key's record and the counters its limits are judged by, read in one step before a request's body is:
-- the web answers a request its key's counters refuse for certain from the head alone (store/key_counters.py).
-- Counts nothing and holds nothing (queue_room.full may give back the room of batch holds that lapsed, as any
-- look at the queue does).
--
-- KEYS[1] the key's record, KEYS[2] its log of admitted submissions (app_key_take_request.lua), KEYS[3] today's usage
-- counters, KEYS[4] the record of the request's Idempotency-Key (looked at only when ARGV[6] is '1'), KEYS[5]
-- queue_room, KEYS[6] queue_room_lapses, KEYS[7] queued_jobs, KEYS[8] aside, KEYS[9] the key's items bucket
-- (app_key_take_items.lua), KEYS[10] its items of the day, KEYS[11...] each pool's line.
-- ARGV[1] now (s), ARGV[2] the rate window (ms), ARGV[3] the key's spend's field in KEYS[3], ARGV[4] the key's owner,
-- ARGV[5] the queue limit of a key whose record sets no max_queued, ARGV[6] '1' when KEYS[4] is to be looked at.
-- Returns {the record (HGETALL), {queued, held, limit} when one more would pass max_queued (else {}), submissions in
-- the window, the oldest of them (ms, or -1 for none), the key's spend today (micro-credits), 1 when the request's
-- Idempotency-Key has a record (its first answer is replayed: nothing is refused for counters) else 0, when the
-- key's items bucket is full again (ms, 0: it is), the items it made today}.
local now, window, spent_field, owner = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local record = redis.call('HGETALL', KEYS[1])
local limit = tonumber(redis.call('HGET', KEYS[1], 'max_queued')) or tonumber(ARGV[5])
local K = {queue_room = KEYS[5], queue_room_lapses = KEYS[6], queued_jobs = KEYS[7], aside = KEYS[8]}
local lines = {}
for i = 11, #KEYS do lines[#lines + 1] = KEYS[i] end
local full = queue_room.full(K, lines, owner, 1, limit, now) or {}
local since = '(' .. (now * 1000 - window)
local in_window = redis.call('ZCOUNT', KEYS[2], since, '+inf')
local oldest = redis.call('ZRANGEBYSCORE', KEYS[2], since, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local spent = tonumber(redis.call('HGET', KEYS[3], spent_field)) or 0
local replay = ARGV[6] == '1' and redis.call('EXISTS', KEYS[4]) or 0
local items_full_at = redis.call('GET', KEYS[9]) or '0'
local items_today = tonumber(redis.call('GET', KEYS[10]) or '0')
return {record, full, in_window, oldest[2] and tostring(oldest[2]) or '-1', spent, replay, items_full_at, items_today}
