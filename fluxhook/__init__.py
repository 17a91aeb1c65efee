"""fluxhook's domain layer, shared by the web app (``receiver``) and the workers (``worker``).

It holds configuration, job records, the BFL client, storage and the business rules;
it never imports Flask or RQ worker code.
"""

__version__ = "0.1.0"
