"""Access to the process's services from inside a request."""

from __future__ import annotations

from flask import current_app

from fluxhook.services import Services


def services() -> Services:
    """The services ``create_app`` was built with."""
    return current_app.extensions["fluxhook"]
