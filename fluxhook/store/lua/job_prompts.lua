-- What a job list's `account` and `q` filters read of each record (store/jobs.py JobStore._in_records), so that
-- a search over 10,000 jobs is a few round trips, not 10,000.
-- KEYS: job records. ARGV[1]: the account a job must have run on ('' = any); ARGV[2]: '1' to return prompts.
-- Returns per record: false if it is gone or ran on another account; else its prompt (its pieces `prompt_0`,
-- `prompt_1`... joined, as store/records.py keeps them; '' when none) if asked, or 1. Read only; a caller passes a
-- few hundred records a call, so Redis is held about a millisecond at a time.
local account, prompts = ARGV[1], ARGV[2] == '1'
local asked = {'id', 'account'}
-- Most prompts fit the first pieces: read in one HMGET, the rest of a longer one piece by piece.
local FIRST = 8
if prompts then
  for n = 0, FIRST - 1 do asked[#asked + 1] = 'prompt_' .. n end
end
local out = {}
for i, key in ipairs(KEYS) do
  local got = redis.call('HMGET', key, unpack(asked))
  local kept = false
  if got[1] and (account == '' or got[2] == account) then
    kept = 1
    if prompts then
      local pieces, n = {}, 0
      while n < FIRST and got[n + 3] do
        pieces[n + 1] = got[n + 3]
        n = n + 1
      end
      while n >= FIRST do
        local piece = redis.call('HGET', key, 'prompt_' .. n)
        if not piece then break end
        n = n + 1
        pieces[n] = piece
      end
      kept = table.concat(pieces)
    end
  end
  out[i] = kept
end
return out
