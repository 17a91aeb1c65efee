-- A line's member, in one place for every script that writes or reads one (store/owners.py is its Python
-- side; tests/unit/store/test_owners.py runs both and fails if they differ).
--
-- A line (the slots' and the work lines') is a sorted set whose members are `<owner>:<job id>`, all scored
-- 0, so an owner's members are one lexical range, in creation order (job ids sort by time). An owner id
-- holds no ':' and nothing that sorts between ':' and ';' (owners.py), so its range ends before ';'.

local members = {}

function members.member(owner, job) return owner .. ':' .. job end

-- The ZRANGEBYLEX bounds of an owner's members.
function members.owner_first(owner) return '[' .. owner .. ':' end
function members.owner_last(owner) return '(' .. owner .. ';' end

-- The job id of one of `owner`'s members.
function members.member_job(owner, item) return string.sub(item, #owner + 2) end

-- The owner of a member.
function members.member_owner(item) return string.match(item, '^([^:]*):') end
