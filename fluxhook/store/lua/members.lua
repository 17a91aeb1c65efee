-- A line's member, in one place for every script that writes or reads one (store/owners.py is its Python
-- side; tests/unit/store/test_owners.py runs both and fails if they differ).
--
-- A line (the slots', the work lines' and the check line) is a sorted set whose members are `<owner>:<job id>`, all
-- scored 0, so an owner's members are one lexical range. An owner id holds no ':' and nothing that sorts between ':'
-- and ';' (owners.py), so its range ends before ';'. Within an owner's range the order is docs/architecture.md's rule after the
-- turns between owners: its single jobs before its batch items ('~'), then the earliest deadline (a job's
-- `Cancel-After`: its rank, the deadline's second in ten digits and a '.', sorts before every job id, 'job_...'),
-- then creation order (job ids sort by time).

local members = {}

-- A batch item's member (bulk) marks its job id with '~', which sorts after every job id ('job_...') and every rank: in
-- its owner's range, each of its owner's single jobs comes before every batch item, so a single job takes its owner's
-- next turn (interactive first, docs/api.md) while turns between owners stay as they are. ':~' still sorts before ';'.
members.BULK = '~'

-- What orders a job by its deadline among its owner's jobs of its form: '' for a job without one (nil, false or ''),
-- which then sorts after those with one.
function members.rank(deadline)
  if not deadline or deadline == '' then return '' end
  return string.format('%010d.', math.floor(tonumber(deadline)))
end

-- A job of an app's end user (its record's `end_user`) is marked with '!' and its end user's tag, then ':', after its
-- form's '~': '!' sorts before every rank, job id and '~', so in each form's part of its owner's range the end users'
-- members come first, each end user's one lexical range, then those of no end user. The tag is a digest of the end
-- user (an opaque text of any characters), so it holds neither ':' nor ';'; two end users sharing one only share turns.
members.END_USER = '!'
members.TAG_CHARS = 16

-- The tag of an end user (nil, false or '': none, then '').
function members.tag(end_user)
  if not end_user or end_user == '' then return '' end
  return string.sub(redis.sha1hex(end_user), 1, members.TAG_CHARS)
end

-- What comes after the owner's ':' and the form's '~' for an end user's job: '' for a job of none.
function members.marked(end_user)
  local tag = members.tag(end_user)
  return tag == '' and '' or (members.END_USER .. tag .. ':')
end

-- A job's member: bulk for a batch item, ranked by its deadline (a number or its record's text; nil: none), marked
-- with its end user's tag when it has one.
function members.member(owner, job, bulk, deadline, end_user)
  return owner .. ':' .. (bulk and members.BULK or '') .. members.marked(end_user) .. members.rank(deadline) .. job
end

-- Every form a job's member may take in a line (single or bulk; ranked by its deadline, and unranked as an older
-- release added it): the job is in a line in at most one, so removing all of them needs no read of which.
function members.forms(owner, job, deadline, end_user)
  local rank, mark = members.rank(deadline), members.marked(end_user)
  local single, bulk = owner .. ':' .. mark, owner .. ':' .. members.BULK .. mark
  if rank == '' then return single .. job, bulk .. job end
  return single .. rank .. job, bulk .. rank .. job, single .. job, bulk .. job
end

-- Whether a member is a batch item's (bulk form).
function members.is_bulk(item) return string.find(item, ':' .. members.BULK, 1, true) ~= nil end

-- The ZRANGEBYLEX bounds of an owner's members.
function members.owner_first(owner) return '[' .. owner .. ':' end
function members.owner_last(owner) return '(' .. owner .. ';' end

-- Of one of `owner`'s members: whether it is a batch item's, and its end user's tag ('' for none).
function members.form(owner, item)
  local bulk = string.sub(item, #owner + 2, #owner + 2) == members.BULK
  local tag = string.match(item, '^!(%x+):', #owner + (bulk and 3 or 2))
  return bulk, tag or ''
end

-- The job id of one of `owner`'s members.
function members.member_job(owner, item)
  local job = string.sub(item, #owner + 2)
  if string.sub(job, 1, 1) == members.BULK then job = string.sub(job, 2) end
  if string.sub(job, 1, 1) == members.END_USER then job = string.match(job, '^!%x+:(.*)$') or job end
  local ranked = string.match(job, '^%d%d%d%d%d%d%d%d%d%d%.(.*)$')
  return ranked or job
end

-- The owner of a member.
function members.member_owner(item) return string.match(item, '^([^:]*):') end
