"""Redis: every key fluxhook keeps and every script that changes them (the one owner of the data model)."""
