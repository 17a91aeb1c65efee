"""When callbacks do not come: the fallback sweep, its polling schedule, and retention."""
