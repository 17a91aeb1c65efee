"""What a BFL model's name looks like (pure): the one pattern for ``/v1/{model}`` and a job's ``model``.

A name is one path segment (``flux-2-pro``), or two joined by one ``/`` as BFL's tools are
(``flux-tools/video-edit-v1``). Each segment starts with a letter or digit, so no name holds ``.``/``..`` as a
segment, an empty segment (``//``), a ``%`` escape or any third segment: a name can only ever be the path of the
one endpoint it names, never lead to another of BFL's paths.
"""

from __future__ import annotations

import re

_SEGMENT = r"[a-z0-9][a-z0-9.-]{0,63}"
# A model's name, as it appears in BFL's task URLs (``/v1/{model}``).
MODEL_NAME = f"{_SEGMENT}(?:/{_SEGMENT})?"
MODEL = re.compile(f"^{MODEL_NAME}$")
