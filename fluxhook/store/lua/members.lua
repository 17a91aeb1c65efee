-- A line's member, in one place for every script that writes or reads one (store/owners.py is its Python
-- side; tests/unit/store/test_owners.py runs both and fails if they differ).
--
-- A line (the slots' and the work lines') is a sorted set whose members are `<owner>:<job id>`, all scored
-- 0, so an owner's members are one lexical range, in creation order (job ids sort by time). An owner id
-- holds no ':' and nothing that sorts between ':' and ';' (owners.py), so its range ends before ';'.

local members = {}

-- A batch item's member (bulk) marks its job id with '~', which sorts after every job id ('job_...'): in its owner's
-- range, each of its owner's single jobs comes before every batch item, so a single job takes its owner's next turn
-- (interactive first, SPEC §18) while turns between owners stay as they are. ':~' still sorts before ';'.
function members.member(owner, job, bulk) return owner .. (bulk and ':~' or ':') .. job end

-- Both forms of a job's member: the job is in a line in at most one, so removing both needs no read of which.
function members.forms(owner, job) return owner .. ':' .. job, owner .. ':~' .. job end

-- The ZRANGEBYLEX bounds of an owner's members.
function members.owner_first(owner) return '[' .. owner .. ':' end
function members.owner_last(owner) return '(' .. owner .. ';' end

-- The job id of one of `owner`'s members.
function members.member_job(owner, item)
  local job = string.sub(item, #owner + 2)
  if string.sub(job, 1, 1) == '~' then return string.sub(job, 2) end
  return job
end

-- The owner of a member.
function members.member_owner(item) return string.match(item, '^([^:]*):') end
