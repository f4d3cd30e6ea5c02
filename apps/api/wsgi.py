"""The WSGI entry point for production servers: ``gunicorn apps.api.wsgi:app``."""

import os

from apps.api.app import create_app
from apps.api.observability import setup_json_logging

setup_json_logging(os.environ.get("LOG_LEVEL", "INFO"))
app = create_app()
