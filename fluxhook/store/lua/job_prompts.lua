-- What a job list's `account` and `q` filters read of each record (store/jobs.py JobStore._admitted), so that
-- reading 10,000 records is a few round trips, not 10,000.
-- KEYS: job records. ARGV[1]: the account a job must have run on ('' = any); ARGV[2]: '1' to read prompts;
-- ARGV[3]: the end user it must have been made for ('' = any).
-- Returns per record: false if it is gone, ran on another account or was made for another end user; else its prompt (its pieces `prompt_0`,
-- `prompt_1`... joined, as store/records.py keeps them; '' when none) if asked, or 1. Read only; a caller passes
-- a few hundred records a call, so Redis is held a millisecond or two at a time.
local account, prompts, end_user = ARGV[1], ARGV[2] == '1', ARGV[3] or ''
local asked = {'id', 'account', 'end_user'}
-- Most prompts fit the first pieces: read in one HMGET, the rest of a longer one piece by piece.
local FIRST = 8
if prompts then
  for n = 0, FIRST - 1 do asked[#asked + 1] = 'prompt_' .. n end
end

local function prompt_of(key, got)
  local pieces, n = {}, 0
  while n < FIRST and got[n + 4] do
    pieces[n + 1] = got[n + 4]
    n = n + 1
  end
  while n >= FIRST do
    local piece = redis.call('HGET', key, 'prompt_' .. n)
    if not piece then break end
    n = n + 1
    pieces[n] = piece
  end
  return table.concat(pieces)
end

local out = {}
for i, key in ipairs(KEYS) do
  local got = redis.call('HMGET', key, unpack(asked))
  local kept = false
  if got[1] and (account == '' or got[2] == account) and (end_user == '' or got[3] == end_user) then
    kept = prompts and prompt_of(key, got) or 1
  end
  out[i] = kept
end
return out
