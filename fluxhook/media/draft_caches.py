"""A FLUX 3 video draft's cache as stored: its storage key, beside the video."""

EXTENSION = "bin"


def key_for(job_id: str) -> str:
    """The storage key of a job's draft cache (beside its video, ``{job_id}.mp4``)."""
    return f"{job_id}-draft.{EXTENSION}"
