"""What a BFL model's name looks like (pure): the one pattern for ``/v1/{model}`` and a job's ``model``."""

from __future__ import annotations

import re

# A model's name, as it appears in BFL's task URLs (``/v1/{model}``).
MODEL_NAME = r"[a-z0-9][a-z0-9.-]{0,63}"
MODEL = re.compile(f"^{MODEL_NAME}$")
