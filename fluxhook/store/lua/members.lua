-- A line's member, in one place for every script that writes or reads one (store/owners.py is its Python
-- side; tests/unit/store/test_owners.py runs both and fails if they differ).
--
-- A line (the slots', the work lines' and the check line) is a sorted set whose members are `<owner>:<job id>`, all
-- scored 0, so an owner's members are one lexical range. An owner id holds no ':' and nothing that sorts between ':'
-- and ';' (owners.py), so its range ends before ';'. Within an owner's range the order is SPEC §15's rule after the
-- turns between owners: its single jobs before its batch items ('~'), then the earliest deadline (a job's
-- `Cancel-After`: its rank, the deadline's second in ten digits and a '.', sorts before every job id, 'job_...'),
-- then creation order (job ids sort by time).

local members = {}

-- A batch item's member (bulk) marks its job id with '~', which sorts after every job id ('job_...') and every rank: in
-- its owner's range, each of its owner's single jobs comes before every batch item, so a single job takes its owner's
-- next turn (interactive first, SPEC §18) while turns between owners stay as they are. ':~' still sorts before ';'.
members.BULK = '~'

-- What orders a job by its deadline among its owner's jobs of its form: '' for a job without one (nil, false or ''),
-- which then sorts after those with one.
function members.rank(deadline)
  if not deadline or deadline == '' then return '' end
  return string.format('%010d.', math.floor(tonumber(deadline)))
end

-- A job's member: bulk for a batch item, ranked by its deadline (a number or its record's text; nil: none).
function members.member(owner, job, bulk, deadline)
  return owner .. ':' .. (bulk and members.BULK or '') .. members.rank(deadline) .. job
end

-- Every form a job's member may take in a line (single or bulk; ranked by its deadline, and unranked as an older
-- release added it): the job is in a line in at most one, so removing all of them needs no read of which.
function members.forms(owner, job, deadline)
  local rank = members.rank(deadline)
  if rank == '' then return owner .. ':' .. job, owner .. ':' .. members.BULK .. job end
  return owner .. ':' .. rank .. job, owner .. ':' .. members.BULK .. rank .. job, owner .. ':' .. job, owner .. ':' .. members.BULK .. job
end

-- Whether a member is a batch item's (bulk form).
function members.is_bulk(item) return string.find(item, ':' .. members.BULK, 1, true) ~= nil end

-- The ZRANGEBYLEX bounds of an owner's members.
function members.owner_first(owner) return '[' .. owner .. ':' end
function members.owner_last(owner) return '(' .. owner .. ';' end

-- The job id of one of `owner`'s members.
function members.member_job(owner, item)
  local job = string.sub(item, #owner + 2)
  if string.sub(job, 1, 1) == members.BULK then job = string.sub(job, 2) end
  local ranked = string.match(job, '^%d%d%d%d%d%d%d%d%d%d%.(.*)$')
  return ranked or job
end

-- The owner of a member.
function members.member_owner(item) return string.match(item, '^([^:]*):') end
