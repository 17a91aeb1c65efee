-- needs: outbox
-- Members put in the notification outbox from Python (outbox.lua), a notifier woken.
-- KEYS[1] the outbox, KEYS[2] the notifiers' wake-up list. ARGV[1] '1': only members not there already; then pairs
-- of a score and a member. Returns how many were added.
local added = 0
for i = 2, #ARGV - 1, 2 do
  if outbox.add(KEYS[1], KEYS[2], ARGV[i], ARGV[i + 1], ARGV[1] == '1') then added = added + 1 end
end
return added
