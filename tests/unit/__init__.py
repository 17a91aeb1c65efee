"""Unit tests, by package: tests/unit/<package>/test_<module>.py tests fluxhook/<package>/<module>.py (receiver/,
worker/ and simulator/ have folders of their own; fluxhook's own top-level modules are tested beside the folders).
A real Redis, the BFL simulator and spy hosts at most: no Procfile process, no browser, no command as a process."""
