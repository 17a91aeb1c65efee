"""fluxhook's foundations: the job and its statuses, errors, configuration, signing and the pure rules every
layer shares. They import nothing of fluxhook's above them (checked by import-linter)."""
