-- needs: job_record
-- A new job record and its indexes (job_record.lua): ARGV[1] the spec, its keys from KEYS[1].
return (job_record.create(1, 0))
