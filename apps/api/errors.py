"""Every error leaves the API as JSON: what went wrong, where, and a request id.

A client mistake gets a 4xx that names the problem; anything else is a 500 whose body
says only that it is our fault, with the request id to quote. Never HTML, never a
stack trace, never the client's input echoed back.

Our own routes answer ``{"error": {"status", "code", "message", "request_id"}}``. The
Open Inference Protocol's routes (``/v2...``) answer what its specification requires,
``{"error": "<message>"}``, with our code and request id as extra keys: V2 clients show
``error`` to their users as the message. The request id also travels in ``X-Request-ID``.
"""

import logging

from flask import Flask, current_app, g, has_request_context, jsonify, request
from werkzeug.exceptions import HTTPException

from apps.registry import ModelNotFoundError, ValidationError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A client error with its HTTP status, a short code and a message for people."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list | None = None,
        headers: dict | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or []
        self.headers = headers or {}


def speaks_v2() -> bool:
    """True for a request to the Open Inference Protocol's routes, known or not."""
    return has_request_context() and (request.path == "/v2" or request.path.startswith("/v2/"))


def error_response(
    status: int, code: str, message: str, details: list | None = None, headers: dict | None = None
):
    """The JSON error: our shape, or the protocol's on the V2 routes."""
    if speaks_v2():
        body = {"error": message, "code": code, "request_id": g.get("request_id")}
        if details:
            body["details"] = details
    else:
        body = {
            "error": {
                "status": status,
                "code": code,
                "message": message,
                "request_id": g.get("request_id"),
            }
        }
        if details:
            body["error"]["details"] = details
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _snake(name: str) -> str:
    return name.lower().replace(" ", "_").replace("'", "")


def register_error_handlers(app: Flask) -> None:
    """Turn our errors, the registry's and Werkzeug's into JSON responses."""

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return error_response(error.status, error.code, error.message, error.details, error.headers)

    @app.errorhandler(ValidationError)
    def validation_error(error: ValidationError):
        return error_response(422, "invalid_input", str(error), error.problems)

    @app.errorhandler(ModelNotFoundError)
    def not_found(error: ModelNotFoundError):
        return error_response(404, "model_not_found", str(error))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        headers = {k: v for k, v in error.get_headers() if k.lower() in ("allow", "retry-after")}
        if error.code == 429:
            message = f"rate limit exceeded ({error.description}); retry later"
        elif error.code == 413:
            limit = current_app.config["MAX_CONTENT_LENGTH"]
            message = f"the request body is larger than the limit of {limit} bytes"
        else:
            message = error.description or error.name
        return error_response(error.code or 500, _snake(error.name), message, headers=headers)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error", extra={"fields": {"request_id": g.get("request_id")}})
        return error_response(
            500, "internal_error", "the server failed to handle this request; quote the request id"
        )
