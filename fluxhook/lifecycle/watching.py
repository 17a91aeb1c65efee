"""Stub until the live part lands: ``watch`` marks a job as watched (its BFL word reaches it within 3 s)."""


def watch(svc, job_id: str) -> None:
    pass
