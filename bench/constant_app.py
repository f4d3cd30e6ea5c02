"""The real API plus one constant-answer route, for benchmarks only.

``POST /bench/constant`` (and ``GET``) returns a fixed small JSON document without
reading the body or touching a model. It is registered like the model routes
(API key check and rate limit through :func:`apps.api.security.protect`) on the app
built by :func:`apps.api.app.create_app`, so it goes through the same request-id,
metrics and logging hooks: it measures what Flask, gunicorn and those hooks cost on
their own, the ceiling any model route can reach.

Serve it with the API's gunicorn settings::

    API_BIND=127.0.0.1:8000 gunicorn -c python:apps.api.gunicorn_conf bench.constant_app:app

Every server in ``bench/api_bench.py`` runs this module, model rows included, so all
rows share one configuration.
"""

import os

from flask import Blueprint, jsonify

from apps.api.app import create_app
from apps.api.observability import setup_json_logging
from apps.api.security import protect

CONSTANT = {"prediction": "Adelie", "probabilities": {"Adelie": 1.0}}


def constant_blueprint() -> Blueprint:
    """``/bench/constant``: the same fixed answer for every request."""
    bp = Blueprint("bench", __name__, url_prefix="/bench")

    @bp.route("/constant", methods=["GET", "POST"])
    def constant():
        return jsonify(CONSTANT)

    return bp


def create_bench_app():
    """The API from ``create_app()``, with the constant route protected like the others."""
    application = create_app()
    limiter = application.extensions["api_limiter"]
    application.register_blueprint(protect(constant_blueprint(), limiter))
    return application


setup_json_logging(os.environ.get("LOG_LEVEL", "INFO"))  # as apps/api/wsgi.py does
app = create_bench_app()
