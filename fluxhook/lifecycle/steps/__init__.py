"""The steps the use cases share: applying a report, polling, queueing work, a job's timeline, presenting it."""
