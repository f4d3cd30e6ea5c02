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

MAX_PROBLEMS = 100
"""The most problems an answer lists: a request of many bad records (or of thousands of
unknown fields) would otherwise get an answer larger than itself."""
MAX_NAME = 64
"""Field names longer than this are cut in answers: the client sent them, it has them."""
MAX_MESSAGE = 1000
"""No error message is longer than this, whatever part of a request it quotes."""


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


def too_many_records(sent: str, limit: int) -> ApiError:
    """The 413 for a request with more records than one request may hold."""
    return ApiError(413, "too_many_records", f"{sent} records sent; at most {limit} per request")


def shorten(text: str, limit: int = MAX_NAME) -> str:
    """A client-supplied name cut to a readable length before it goes into a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def speaks_v2() -> bool:
    """True for a request to the Open Inference Protocol's routes, known or not."""
    return has_request_context() and (request.path == "/v2" or request.path.startswith("/v2/"))


def error_response(
    status: int, code: str, message: str, details: list | None = None, headers: dict | None = None
):
    """The JSON error: our shape, or the protocol's on the V2 routes."""
    message = shorten(message, MAX_MESSAGE)
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


def shown_problems(error: ValidationError) -> tuple[str, list[dict]]:
    """The message and the problems to send back, cut to a size that cannot grow unbounded.

    The message names the first problem and how many more there are; when the list is
    cut, it says how many of them the details hold.
    """
    problems = [
        {**p, "field": shorten(p["field"]) if isinstance(p.get("field"), str) else p.get("field")}
        for p in error.problems[:MAX_PROBLEMS]
    ]
    message = str(ValidationError(problems[:1]))
    total = len(error.problems)
    if total > 1:
        message += f" (and {total - 1} more problems"
        if total > MAX_PROBLEMS:
            message += f"; details lists the first {MAX_PROBLEMS} of {total}, the rest were cut"
        message += ")"
    return message, problems


def _snake(name: str) -> str:
    return name.lower().replace(" ", "_").replace("'", "")


def register_error_handlers(app: Flask) -> None:
    """Turn our errors, the registry's and Werkzeug's into JSON responses."""

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return error_response(error.status, error.code, error.message, error.details, error.headers)

    @app.errorhandler(ValidationError)
    def validation_error(error: ValidationError):
        message, problems = shown_problems(error)
        return error_response(422, "invalid_input", message, problems)

    @app.errorhandler(ModelNotFoundError)
    def not_found(error: ModelNotFoundError):
        return error_response(404, "model_not_found", str(error))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        headers = {k: v for k, v in error.get_headers() if k.lower() in ("allow", "retry-after")}
        if error.code == 429:
            message = f"rate limit exceeded ({error.description}); retry later"
        elif error.code == 413:
            limit = getattr(request, "effective_body_limit", None)
            limit = limit() if limit else current_app.config["MAX_CONTENT_LENGTH"]
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
