-- needs: slot_layout, slot_holders, slot_counts
-- The slot scripts' reading of their ARGV and KEYS (store/slots.py builds both): the accounts and their pools,
-- their limits, and reads: an owner's slots held and limit, an account's slots held (a count missing is written as
-- it is made, slot_counts.lua), its cooldown and pauses; storage's mark.
--
-- KEYS: named by store/keys.py's slot layout (K, below); a script's own key follows, at K.after + 1.
-- ARGV[1] now, ARGV[2] the slot lease (s), ARGV[3] the submit lease (s), ARGV[4] the admin owner,
-- ARGV[5] the weight of an owner without one (owners.DEFAULT_WEIGHT), ARGV[6] n pools, then the n pool
-- names; then m accounts, then per account its name, region ('' for none), max_active and its limit of
-- each pool; the script's own arguments follow (from ARGV[rest]).
--
-- slots_accounts.read() reads them once into a script's context: its fields and its functions, named as below.
local slots_accounts = {}

-- The account's cooldown record (until, lasting, probe), read once per script into the account's table (a cooldown
-- is set between scripts).
function slots_accounts.cooling_read(account)
  if account.cool_read == nil then
    account.cool_read = redis.call('HMGET', account.cooling, 'until', 'lasting', 'probe')
  end
  return account.cool_read[1], account.cool_read[2], account.cool_read[3]
end

-- The end of the account's cooldown while one runs at ``now`` (a lasting one's, even past its end), else nil: what a
-- wait names (store/cooldowns.py reads it alike). Probation is no cooldown: the account is only kept to one task.
function slots_accounts.cooldown_until(account, now)
  local ends, lasting = slots_accounts.cooling_read(account)
  if ends and (lasting == '1' or tonumber(ends) > now) then return tonumber(ends) end
  return nil
end

function slots_accounts.read()
  local now = tonumber(ARGV[1])
  local slot_lease, submit_lease = tonumber(ARGV[2]), tonumber(ARGV[3])
  local admin, default_weight = ARGV[4], tonumber(ARGV[5])
  local n_pools = tonumber(ARGV[6])
  local n_accounts = tonumber(ARGV[7 + n_pools])
  local K = slot_layout(n_pools, n_accounts)
  local due, held, passes = K.due, K.fair_held, K.fair_passes
  local weights, caps, holders, route_index = K.share_weights, K.share_max_active, K.slot_holders, K.routes
  local fair = {passes = passes, weights = weights, default_weight = default_weight}
  local pools, by_name = {}, {}
  for i = 1, n_pools do
    local pool = {name = ARGV[6 + i], line = K.pool[i].line}
    pools[i] = pool
    by_name[pool.name] = pool
  end
  local accounts, account_named = {}, {}
  local arg = 7 + n_pools
  for j = 1, n_accounts do
    local its = K.account[j]
    local account = {name = ARGV[arg + 1], region = ARGV[arg + 2], max_active = tonumber(ARGV[arg + 3]),
                     cooling = its.cooling, pools = {}}
    arg = arg + 3
    for i = 1, n_pools do
      account.pools[pools[i].name] = {limit = tonumber(ARGV[arg + i]), slots = its.pool[i].slots,
                                      paused = its.pool[i].paused}
    end
    arg = arg + n_pools
    accounts[j] = account
    account_named[account.name] = account
  end
  local rest = arg + 1

  -- A number as the scripts write it back: every digit a double holds.
  local function fmt(x) return string.format('%.17g', x) end

  local held_by = {}
  local function held_of(owner)
    if held_by[owner] == nil then held_by[owner] = tonumber(redis.call('HGET', held, owner) or 0) end
    return held_by[owner]
  end
  -- Each owner's limit, read once per script (false: no limit of its own).
  local cap_of = {}
  local function cap(owner)
    if cap_of[owner] == nil then cap_of[owner] = tonumber(redis.call('HGET', caps, owner)) or false end
    return cap_of[owner]
  end
  -- An owner's limit its caller read already (a number, or '' for none): not asked of Redis.
  local function know_cap(owner, value) cap_of[owner] = tonumber(value) or false end
  local function owner_room(owner)
    return not cap(owner) or held_of(owner) < cap(owner)
  end
  -- Whether no account cools down (or is on probation), no pool is paused at any and sends do not wait for storage:
  -- one EXISTS of all their keys, asked once per script when one is first needed. A cooldown's record, a pause and
  -- storage's mark live only while they hold (account_cool.lua, slots_requeue.lua, store_pacing.lua), so with none
  -- found none is read; else each is read as asked.
  local quiet_asked, storage_mark = false, nil
  local function ask_quiet()
    if quiet_asked then return end
    quiet_asked = true
    local keys = {K.store_held}
    for _, account in ipairs(accounts) do
      keys[#keys + 1] = account.cooling
      for _, pool in ipairs(pools) do keys[#keys + 1] = account.pools[pool.name].paused end
    end
    if redis.call('EXISTS', unpack(keys)) > 0 then return end
    storage_mark = false
    for _, account in ipairs(accounts) do
      account.cool_read = {false, false, false}
      for _, pool in ipairs(pools) do account.pools[pool.name].paused_ms = -2 end
    end
  end
  -- Whether the account takes no task now. Past its cooldown's end an account is on probation until a task is
  -- accepted (store/cooldowns.py): it takes one job, and no other while that one is out, so a recovering account is
  -- tested with one submission, not a slot-full of them.
  local cool_of = {}
  local function cooling(account)
    if cool_of[account.name] == nil then
      ask_quiet()
      local ends, lasting, probe = slots_accounts.cooling_read(account)
      account.probation = ends and lasting ~= '1' and tonumber(ends) <= now
      cool_of[account.name] = ends ~= false and (lasting == '1' or tonumber(ends) > now or probe ~= false)
    end
    return cool_of[account.name]
  end
  local function cooldown_until(account)
    ask_quiet()
    return slots_accounts.cooldown_until(account, now)
  end
  -- Storage's mark while new sends wait for it (store_pacing.lua: '<until>|<backlog>|<rate>'), else false: read once
  -- per script. Every account's every pool is held back by it, and its lift wakes a dispatcher: no timer waits on it.
  local function storage_held()
    if storage_mark == nil then
      ask_quiet()
      if storage_mark == nil then storage_mark = redis.call('GET', K.store_held) or false end
    end
    return storage_mark
  end
  -- What waits for storage: 'all' (every send), 'bulk' (batch items: a key's single jobs go before them), or false.
  local function storage_level()
    local mark = storage_held()
    if not mark then return false end
    return string.match(mark, '^[^|]*|[^|]*|[^|]*|(%a+)$') or 'all'
  end
  -- The ms left of the pool's pause at the account (PTTL: -2 for none), read once per script: the dispatch asks it
  -- at each turn, and a wait's reason asks it again.
  local function paused_ms(its)
    if its.paused_ms == nil then
      ask_quiet()
      if its.paused_ms == nil then its.paused_ms = redis.call('PTTL', its.paused) end
    end
    return its.paused_ms
  end

  -- The slots an account holds in a pool (``its.held``) and over its pools (``account.held``), read for every account
  -- and pool at once when first asked (slot_counts.lua: one HMGET), but for those a script counted already (the
  -- look for slots past their lease): a dispatch of empty lines reads none. A script taking a slot keeps both up.
  local counted = false
  local function count_all()
    if counted then return end
    counted = true
    local keys, places = {}, {}
    for _, account in ipairs(accounts) do
      for _, pool in ipairs(pools) do
        local its = account.pools[pool.name]
        if its.held == nil then keys[#keys + 1], places[#places + 1] = its.slots, its end
      end
    end
    if #keys == 0 then return end
    for i, n in ipairs(slot_counts.read(K.slot_counts, keys)) do places[i].held = n end
  end
  local function held_in(account, pool_name)
    count_all()
    return account.pools[pool_name].held
  end
  local function held_over(account)
    if account.held == nil then
      local total = 0
      for _, pool in ipairs(pools) do total = total + held_in(account, pool.name) end
      account.held = total
    end
    return account.held
  end

  return {now = now, slot_lease = slot_lease, submit_lease = submit_lease, admin = admin,
          default_weight = default_weight, K = K, due = due, held = held, passes = passes,
          weights = weights, caps = caps, holders = holders,
          route_index = route_index, fair = fair, pools = pools, by_name = by_name, accounts = accounts,
          account_named = account_named, rest = rest, fmt = fmt, held_by = held_by, held_of = held_of,
          cap = cap, know_cap = know_cap, owner_room = owner_room, cool_of = cool_of, cooling = cooling, cooldown_until = cooldown_until,
          paused_ms = paused_ms, held_in = held_in, held_over = held_over, storage_held = storage_held,
          storage_level = storage_level}
end
