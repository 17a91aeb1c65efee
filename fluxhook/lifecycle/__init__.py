"""A job's workflow, one module per step: submitting, applying BFL's reports, storing results, checks and sweeps."""
