-- needs: effects
-- Effects on their own, for work that has no status change to ride on: all done, in one step.
--
-- KEYS: each effect's key; ARGV[1] the effects (JSON, see store/effects.py).
-- Returns the work taken at once for RQ (effects.apply).
return effects.apply(cjson.decode(ARGV[1]))
