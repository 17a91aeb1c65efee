"""Results: downloading them safely, telling what they are by their bytes, storing them, and thumbnails."""
