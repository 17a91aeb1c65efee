-- needs: notify_room
-- Messages removed with their job (ARGV: their notify_due members) leave the due set, but one whose attempt is under
-- way: noted in flight (notify_room.note), it stays due at its lease, the one hold that gives its room back should its
-- process die (notify_take.lua); its attempt, finding its message gone, ends it (notify_finish.lua).
-- KEYS[1] due, KEYS[2] busy.
for _, member in ipairs(ARGV) do
  if redis.call('HEXISTS', KEYS[2], notify_room.note(member)) == 0 then redis.call('ZREM', KEYS[1], member) end
end
return #ARGV
