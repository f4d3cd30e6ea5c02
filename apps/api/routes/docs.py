"""The OpenAPI document, interactive docs served offline, and Prometheus metrics."""

import importlib.util
from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify, send_from_directory

from apps.api.extensions import hooks
from apps.api.observability import metrics_response
from apps.api.openapi import build_openapi
from apps.api.security import api_keys, presented_entry

SWAGGER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Penguins model API</title>
<link rel="stylesheet" href="/docs/static/css/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/js/swagger-ui-bundle.js"></script>
<script src="/docs/static/swagger-initializer-local.js"></script>
</body></html>
"""
SWAGGER_INIT = (
    "window.onload = () => { window.ui = SwaggerUIBundle("
    "{url: '/openapi.json', dom_id: '#swagger-ui'}); };\n"
)


def swagger_ui_folder() -> Path:
    """Swagger UI 5's files, from the ``flask-openapi3-swagger`` package.

    Version 5 is the first that reads OpenAPI 3.1, the version of our document. Only
    the package's static files are used (found without importing it), so nothing is
    fetched from a CDN and the docs work offline.
    """
    spec = importlib.util.find_spec("flask_openapi3_swagger")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("flask-openapi3-swagger is not installed: the docs need its files")
    return Path(spec.submodule_search_locations[0]) / "templates" / "swagger"


def blueprint() -> Blueprint:
    """``/openapi.json``, ``/docs`` (Swagger UI from the installed package) and ``/metrics``."""
    bp = Blueprint("docs", __name__)

    @bp.get("/openapi.json")
    def openapi():
        """The OpenAPI document, built once (in two views) from the routes and models.

        With API keys configured, readers without a valid key get the public view:
        the models' schemas are for key holders, as on the metadata routes.
        """
        documents = current_app.extensions.get("openapi")
        if documents is None:
            documents = {
                "full": build_openapi(current_app),
                "public": build_openapi(current_app, reveal_models=False),
            }
            current_app.extensions["openapi"] = documents
        holder = not api_keys() or presented_entry() is not None
        return jsonify(documents["full" if holder else "public"])

    @bp.get("/docs")
    def docs():
        """Swagger UI, with every file served by us: it works offline."""
        return Response(SWAGGER_PAGE, mimetype="text/html")

    @bp.get("/docs/static/swagger-initializer-local.js")
    def docs_init():
        return Response(SWAGGER_INIT, mimetype="text/javascript")

    @bp.get("/docs/static/<path:filename>")
    def docs_static(filename: str):
        """Swagger UI's own files (see :func:`swagger_ui_folder`)."""
        return send_from_directory(swagger_ui_folder(), filename)

    @bp.get("/metrics")
    def metrics():
        """Prometheus metrics: requests, latency, predictions by model, version and class."""
        response = metrics_response()
        for more in hooks(current_app, "metrics"):  # figures of later lessons
            response.set_data(response.get_data() + more().encode())
        return response

    return bp
