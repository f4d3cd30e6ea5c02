"""The application factory: configuration, models, hooks and blueprints in one place.

``create_app()`` is an application factory, as in Flask's tutorial: configuration
from defaults, then the environment, then the caller (tests); blueprints registered
in one place; the models loaded once, before any request.
"""

from flask import Flask

from apps.api import extensions
from apps.api.bodies import init_bodies
from apps.api.config import load_settings
from apps.api.errors import register_error_handlers
from apps.api.jsonio import init_json
from apps.api.observability import PREDICTIONS, init_observability
from apps.api.routes import admin, docs, health, mlflow, native, v2
from apps.api.security import init_security, protect
from apps.api.service import ModelService
from apps.registry import ModelRegistry


def create_app(test_config: dict | None = None) -> Flask:
    """Build the API; ``test_config`` overrides settings (see :mod:`apps.api.config`)."""
    app = Flask(__name__)
    # Routing never redirects: for "/v1//models" Werkzeug would answer a 308 in HTML to
    # a URL built from the request's Host header, which makes an open redirect.
    app.url_map.merge_slashes = app.url_map.strict_slashes = False
    app.config.update(load_settings(test_config))
    init_json(app)
    init_bodies(app)

    service = ModelService(
        ModelRegistry(app.config["MODELS_DIR"]),
        app.config["MODELS"],
        app.config["BACKEND"],
        app.config["MAX_RECORDS"],
    )
    service.predictions_counter = PREDICTIONS
    app.extensions["model_service"] = service

    init_observability(app)
    register_error_handlers(app)
    limiter = app.extensions["api_limiter"] = init_security(app)
    app.register_blueprint(health.blueprint())
    app.register_blueprint(v2.open_blueprint())
    app.register_blueprint(docs.blueprint())
    for bp in (native.blueprint(), v2.blueprint(), mlflow.blueprint()):
        app.register_blueprint(protect(bp, limiter))
    app.register_blueprint(protect(admin.blueprint(), limiter, scope="admin"))
    for extension in extensions.discover():
        extension.init_app(app)
    return app
