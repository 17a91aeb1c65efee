"""The ``fluxhook`` command: use a running fluxhook over HTTP, and check or nudge one as its operator.

API commands (``submit``, ``show``, ``list``, ``batch``, ...) go through :mod:`fluxhook.client`, like any app. Operator
commands (``sweep``, ``migrate``, ``doctor``) live in :mod:`fluxhook.cli.operator_commands`: they read the service's own
settings and talk to its Redis, storage and BFL directly. Both answer with the one table of exit codes (``cli.exits``),
which ``fluxhook --help`` prints, and both find a running ``make run`` through the settings file it keeps
(``cli.dev_run``) when they are told nothing else.

Runs as ``fluxhook ...`` once installed (``pip install -e .``), or as ``python -m fluxhook.cli ...``.
"""
