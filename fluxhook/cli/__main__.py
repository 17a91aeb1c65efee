"""``python -m fluxhook.cli``: the ``fluxhook`` command without an install."""

import sys

from fluxhook.cli.main import main

sys.exit(main())
