-- needs: sweep_index
-- Members put in an index the sweep reads, from Python (sweep_index.lua).
-- KEYS[1] the index, KEYS[2] the sweepers' wake-up list. ARGV: pairs of a score and a member.
for i = 1, #ARGV - 1, 2 do sweep_index.add(KEYS[1], KEYS[2], ARGV[i], ARGV[i + 1]) end
return 0
