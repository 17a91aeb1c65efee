-- needs: slots_accounts, queue_room
-- An owner's room under its max_queued (queue_room.lua), looked at or held for a batch before its first item is made.
-- ARGV[rest...]: the owner, how many items, its max_queued, the batch's id ('': only look, holding nothing), how long
-- the room held lasts unused (s), and 'give_back' to give the room the batch holds back instead (it was refused
-- before any item was made).
-- Returns {} when it has room for them (held for the batch until its items take it, or the hold lapses), else {its
-- jobs queued, the room its batches being made hold, its limit}, nothing held.
local s = slots_accounts.read()
local K, rest = s.K, s.rest
local owner, items, limit = ARGV[rest], tonumber(ARGV[rest + 1]), tonumber(ARGV[rest + 2])
local batch, lease = ARGV[rest + 3], tonumber(ARGV[rest + 4])
local lines = {}
for _, pool in ipairs(s.pools) do lines[#lines + 1] = pool.line end
if ARGV[rest + 5] == 'give_back' then
  queue_room.release(K, owner, batch)
  return {}
end
if batch == '' then return queue_room.full(K, lines, owner, items, limit, s.now) or {} end
return queue_room.hold(K, lines, owner, batch, items, limit, s.now, lease) or {}
