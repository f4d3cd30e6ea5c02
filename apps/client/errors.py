"""The two exceptions a caller has to handle, carrying what the server said.

A program needs to tell apart "the server answered no" (:class:`ClientError`: fix the
request, or show the message) from "there was nobody to answer"
(:class:`ApiUnavailable`: try later, or fail over). The request id is kept on both,
because it is what finds the matching line in the server's log.
"""

import requests


class ClientError(Exception):
    """The API refused a request, or its answer could not be used.

    ``status`` is the HTTP status (``None`` when no answer came), ``code`` the API's
    short error code (``invalid_input``, ``model_not_found``, ...), ``message`` its
    explanation for people, ``request_id`` the id to quote, and ``details`` the list of
    per-field problems of a 422 (empty otherwise).
    """

    def __init__(
        self,
        message: str,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        details: list | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.details = list(details or [])

    def __str__(self) -> str:
        where = f"{self.status} {self.code}: " if self.status else ""
        quote = f" (request id {self.request_id})" if self.request_id else ""
        return f"{where}{self.message}{quote}"

    @classmethod
    def from_response(cls, response: requests.Response) -> "ClientError":
        """Build the error from an API answer, or from any other server's answer.

        The API always answers ``{"error": {...}}``; a proxy or a load balancer in
        between may answer HTML instead, so anything else still gives a readable error.
        """
        header_id = response.headers.get("X-Request-ID") or None
        try:
            error = response.json()["error"]
            if not isinstance(error, dict):
                raise TypeError("error is not an object")
        except (ValueError, KeyError, TypeError):
            text = " ".join(response.text.split())[:200]
            message = f"HTTP {response.status_code} {response.reason}" + (
                f": {text}" if text else ""
            )
            return cls(message, response.status_code, "http_error", header_id)
        return cls(
            str(error.get("message", response.reason)),
            response.status_code,
            error.get("code"),
            error.get("request_id") or header_id,
            error.get("details"),
        )


class ApiUnavailable(ClientError):
    """Nothing answered: the connection was refused or timed out, after every retry."""
