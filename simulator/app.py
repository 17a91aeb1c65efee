"""Flask application factory for the simulator."""

from __future__ import annotations

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from . import api, control, delivery
from .errors import Rejected
from .settings import SimSettings
from .state import Simulator


def create_app(settings: SimSettings) -> Flask:
    """Build the simulator app; its state lives in `app.extensions["simulator"]`."""
    app = Flask("simulator")
    app.extensions["simulator"] = Simulator(settings)
    app.register_blueprint(api.bp)
    app.register_blueprint(delivery.bp)
    app.register_blueprint(control.bp)

    @app.errorhandler(Rejected)
    def _rejected(exc: Rejected) -> tuple[Response, int, dict[str, str]]:
        return jsonify(exc.body), exc.status, exc.headers

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        return jsonify({"detail": exc.name}), exc.code or 500

    return app


def simulator_of(app: Flask) -> Simulator:
    """The Simulator behind an app made by `create_app`."""
    return app.extensions["simulator"]
