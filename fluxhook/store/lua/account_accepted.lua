-- needs: account_standing
-- BFL accepted a task of the account (account_standing.lua says what that does).
--
-- KEYS[1] the account's cooldown, KEYS[2] the pool's strikes there, KEYS[3] the account's strikes.
-- ARGV: now (epoch seconds).
-- Returns 1 if a cooldown ended.
return account_standing.accepted(KEYS[1], {KEYS[2], KEYS[3]}, tonumber(ARGV[1])) and 1 or 0
