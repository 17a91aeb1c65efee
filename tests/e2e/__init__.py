"""End-to-end tests, by concern: the Procfile's web and worker processes (the session stack or stacks of their own),
web apps over HTTP, headless Chromium, and the commands as processes. Every test here is marked ``e2e``
(tests/conftest.py); `pytest -m "not e2e"` leaves them out."""
