"""The WSGI entry point for production servers: ``gunicorn apps.api.wsgi:app``.

A setting the server must not start with (a key file without a key, say) stops it
here with the reason on one line and a non-zero exit code, rather than a traceback.
"""

import os
import sys

from apps.api.app import create_app
from apps.api.config import SettingsError
from apps.api.observability import setup_json_logging

setup_json_logging(os.environ.get("LOG_LEVEL", "INFO"))
try:
    app = create_app()
except SettingsError as error:
    sys.exit(f"The API cannot start: {error}")
