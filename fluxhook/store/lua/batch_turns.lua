-- needs: members, fair_turns
-- Turns to make a batch (store/batch_turns.py), over every web process: batches of at most ARGV[3] items all told are
-- made at once (any one batch when none is), at most one of each owner, and the requests waiting for a turn take them
-- in turns between owners (docs/fair-share.md's rule, fair_turns.lua: start-time fair queueing, weights included), each owner's
-- waiters in the order they came (FIFO). A turn costs its owner the batch's items / its weight: a key that floods
-- 10,000-item batches waits behind another key's small one, not the other way; and as one owner's batch is made,
-- another owner's whose items fit beside it is made at once, not after it.
--
-- A waiter is a line member `<owner>:<seq>.<items>` (seq: 16 digits from the counter `~seq` of the passes, so an
-- owner's waiters sort in the order they came). Each holds a lease that its request renews while it waits (`look`):
-- a waiter whose process died is dropped once its lease ends. A turn is a lease too (the makers' set), renewed by
-- its maker's heartbeat (Batches.making_went_on); one whose process died ends with its lease, and the next call of
-- any process gives it on.
--
-- KEYS[1] the turns being made (sorted set: member -> when its lease ends, ms)
-- KEYS[2] the line of waiters (sorted set, all scored 0: one lexical range per owner)
-- KEYS[3] the waiters' leases (sorted set: member -> when it ends, ms)
-- KEYS[4] the passes (hash: owner -> pass, with the fair clock and the counter `~seq`)
-- KEYS[5] the owners' weights (hash: owner -> weight; Keys.share_weights)
-- ARGV[1] what to do: `join` (a new waiter: ARGV[7] owner, ARGV[8] its items), `look` (waiter ARGV[7] waits on: its
--         lease renewed, its place kept), `leave` (waiter ARGV[7] gives up, unless its turn came), `end` (the turn
--         of ARGV[7] ends)
-- ARGV[2] now (ms); ARGV[3] items made at once, all told; ARGV[4] a turn's lease (ms); ARGV[5] a waiter's lease (ms);
-- ARGV[6] the weight of an owner without one; ARGV[9] the making set's life (ms): a turn's lease, a second at least
-- Returns {member, holds (1: member holds a turn now), the members given a turn by this call (to be woken)}.
local making, line, waiting, passes, weights = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local op, now, items_at_once = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local turn_lease, wait_lease = tonumber(ARGV[4]), tonumber(ARGV[5])

local function holds(member)
  local until_ms = tonumber(redis.call('ZSCORE', making, member))
  return until_ms ~= nil and until_ms > now
end

-- A member's batch's items (after its '.').
local function items_of(member)
  return tonumber(string.match(member, '%.(%d+)$')) or 1
end

local function drop_waiter(member)
  redis.call('ZREM', line, member)
  redis.call('ZREM', waiting, member)
end

local member = ARGV[7]
if op == 'join' then
  local seq = redis.call('HINCRBY', passes, '~seq', 1)
  member = string.format('%s:%016d.%d', ARGV[7], seq, tonumber(ARGV[8]))
end

-- Turns and waiters whose process died (their leases ended) count no more.
redis.call('ZREMRANGEBYSCORE', making, '-inf', now)
for _, lapsed in ipairs(redis.call('ZRANGEBYSCORE', waiting, '-inf', now)) do drop_waiter(lapsed) end

local mine = false
if op == 'join' or op == 'look' then
  mine = holds(member)
  if not mine then
    -- A waiter looked for again keeps its place (its member names it): one whose process stalled past its lease
    -- comes back where it was.
    redis.call('ZADD', line, 'NX', 0, member)
    redis.call('ZADD', waiting, now + wait_lease, member)
  end
elseif op == 'leave' then
  mine = holds(member)
  if not mine then drop_waiter(member) end
elseif op == 'end' then
  redis.call('ZREM', making, member)
  drop_waiter(member)
end

-- Free turns go to the waiters whose turn comes first, of the owners making none now, while their items fit. The
-- first whose items do not fit stops the giving: a large batch is not passed over for ever by small ones.
local given = {}
local heads = fair_turns.heads(line)
if #heads > 0 then
  local busy, items_made = {}, 0
  for _, held in ipairs(redis.call('ZRANGE', making, 0, -1)) do
    busy[members.member_owner(held)] = true
    items_made = items_made + items_of(held)
  end
  local turns = fair_turns.new(passes, weights, tonumber(ARGV[6]))
  local function free(owner) return not busy[owner] end
  while true do
    local turn = turns.earliest(turns.refresh(line, heads), free)
    if not turn then break end
    local next_member = turn.head.item
    local items = items_of(next_member)
    if items_made > 0 and items_made + items > items_at_once then break end
    drop_waiter(next_member)
    redis.call('ZADD', making, now + turn_lease, next_member)
    turns.charge(turn.owner, items)
    fair_turns.advance(turn.head)
    busy[turn.owner], items_made = true, items_made + items
    given[#given + 1] = next_member
    if next_member == member then mine = true end
  end
end
if redis.call('EXISTS', making) == 1 then redis.call('PEXPIRE', making, tonumber(ARGV[9])) end
if redis.call('EXISTS', waiting) == 1 then
  redis.call('PEXPIRE', waiting, wait_lease)
  redis.call('PEXPIRE', line, wait_lease)
end
return {member, mine and 1 or 0, given}
