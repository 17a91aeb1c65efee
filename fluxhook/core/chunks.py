"""The piece size of large data (pure): how much of a video, an image or a request body of base64 images
fluxhook holds at a time when it reads, copies, hashes, spools or encodes it piece by piece, so memory stays
at a few pieces whatever the size."""

from __future__ import annotations

# Bytes read or written at a time (characters, where a long JSON string is checked and encoded).
CHUNK = 1024 * 1024
