"""Local stand-in for the Black Forest Labs FLUX API, with webhooks and fault knobs."""

from .app import create_app, simulator_of
from .settings import SimSettings

__all__ = ["SimSettings", "create_app", "simulator_of"]
