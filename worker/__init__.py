"""fluxhook's RQ tasks and the worker process that runs them (``python -m worker``)."""
