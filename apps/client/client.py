"""``PenguinClient``: every route a Python program needs, with timeouts and retries.

One ``requests.Session`` is reused for every call: it keeps TCP connections open
(keep-alive), so a loop of small requests does not pay for a new connection each time,
and it carries the API key header once for all calls.
"""

import logging
import os
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests

from apps.client.errors import ApiUnavailable, ClientError
from apps.client.records import as_records, frame_to_records, predictions_to_frame
from apps.client.retry import RETRY_STATUSES, wait_seconds

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV = "PENGUINS_API_URL"
KEY_ENV = "PENGUINS_API_KEY"
REQUEST_ID_HEADER = "X-Request-ID"


class PenguinClient:
    """Call the penguins API from Python.

    ``base_url`` defaults to ``$PENGUINS_API_URL`` or ``http://127.0.0.1:8000``;
    ``api_key`` to ``$PENGUINS_API_KEY`` (sent as ``X-API-Key``). Every request waits
    at most ``timeout`` seconds to connect and as long again for each read: a call
    without a timeout can hang forever on a server that accepts and never answers.

    ``retries`` is how many times a failed request is tried *again* (so at most
    ``retries + 1`` attempts): after a connection error, or a 429 or 503 answer,
    waiting ``backoff``, then twice, four times as long... or what the server's
    ``Retry-After`` says (see :mod:`apps.client.retry`).

    Every call sends an ``X-Request-ID`` (kept across its retries, so the server's log
    shows them as one request) unless ``session.headers`` already holds one.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
    ):
        if timeout <= 0:
            raise ValueError("timeout must be positive: without one a call can hang forever")
        if retries < 0 or backoff < 0:
            raise ValueError("retries and backoff must not be negative")
        self.base_url = (base_url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.session = requests.Session()
        key = api_key if api_key is not None else os.environ.get(KEY_ENV)
        if key:
            self.session.headers["X-API-Key"] = key

    def __repr__(self) -> str:
        return f"PenguinClient({self.base_url!r})"  # never the key: reprs end up in logs

    def __enter__(self) -> "PenguinClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    # --- health ---------------------------------------------------------------------

    def live(self) -> bool:
        """True if the server answers ``/health/live``; False (never an exception) if not.

        One attempt, no retries: a liveness check must answer quickly, and callers use
        it in their own loops ("wait until the server is up").
        """
        try:
            response = self.session.get(f"{self.base_url}/health/live", timeout=self.timeout)
        except requests.RequestException:
            return False
        with response:
            return response.status_code == 200

    def ready(self) -> dict:
        """The ``/health/ready`` body; a :class:`ClientError` listing the problems on 503.

        A 503 here is an answer, not a hiccup ("a model failed its checks"), so it is
        not retried: the caller learns at once, with the server's reasons in
        ``details``.
        """
        response = self._call("GET", "/health/ready", retry_on={429}, accept={503})
        body = self._json(response)
        if response.status_code == 503:
            problems = list(body.get("problems", [])) if isinstance(body, dict) else []
            raise ClientError(
                "the API is not ready: " + ("; ".join(problems) or "no reason given"),
                503,
                "not_ready",
                response.headers.get(REQUEST_ID_HEADER),
                problems,
            )
        return body

    # --- models ---------------------------------------------------------------------

    def models(self) -> list[dict]:
        """Every model served: name, task, latest version, versions, backend."""
        return self._json(self._call("GET", "/v1/models"))["models"]

    def model(self, name: str, version: int | str | None = None) -> dict:
        """A model's metadata: input schema, outputs, metrics, training data."""
        return self._json(self._call("GET", self._model_path(name, version)))

    # --- predictions ------------------------------------------------------------------

    def predict(
        self,
        name: str,
        records: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        version: int | str | None = None,
    ) -> list[dict]:
        """Predictions for one record (a dict) or many (a list of dicts), in order.

        Each is ``{"prediction": ...}``, plus ``"probabilities"`` for a classifier.
        """
        return self.predict_response(name, records, version)["predictions"]

    def predict_response(
        self,
        name: str,
        records: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        version: int | str | None = None,
    ) -> dict:
        """The whole answer: model, version, backend, request_id and predictions.

        A POST is normally not retried blindly, but predicting changes nothing on the
        server: sending the same records twice gives the same answer and no side
        effect. So a prediction is retried after a connection error, a 429 or a 503,
        where the server did not (or could not) handle it. It is *not* sent again after
        a read timeout: the server did receive it and may still be working on it, and
        piling copies onto a slow server makes it slower for everyone.
        """
        body = {"records": as_records(records)}
        path = self._model_path(name, version) + "/predict"
        return self._json(self._call("POST", path, json=body))

    def predict_frame(
        self, name: str, frame: "pd.DataFrame", version: int | str | None = None
    ) -> "pd.DataFrame":
        """The frame's rows, plus ``prediction`` (and ``probability_<class>`` columns).

        Missing values (NaN, None, pandas' NA) are sent as JSON ``null``, which the
        API reads as missing. The result keeps the frame's index.
        """
        predictions = self.predict(name, frame_to_records(frame), version)
        return predictions_to_frame(frame, predictions)

    # --- monitoring (notebook 07) -------------------------------------------------------

    def feedback(self, name: str, request_id: str, truth: Any, row: int = 0) -> dict:
        """Send the truth for a logged prediction: its request id (the ``request_id`` of
        the answer, or its ``X-Request-ID`` header) and, for a request with several
        records, the row. Like a prediction it is retried safely: the same truth twice is
        stored once (``status`` says ``recorded``, ``unchanged`` or ``updated``)."""
        body = {"request_id": request_id, "row": row, "truth": truth}
        return self._json(self._call("POST", self._model_path(name, None) + "/feedback", json=body))

    def monitoring(self, name: str, limit: int = 20) -> dict:
        """What the prediction log knows about a model: counts, the latest drift report and
        the ``limit`` most recent predictions."""
        path = f"{self._model_path(name, None)}/monitoring?limit={int(limit)}"
        return self._json(self._call("GET", path))

    # --- plumbing -----------------------------------------------------------------------

    @staticmethod
    def _model_path(name: str, version: int | str | None) -> str:
        path = f"/v1/models/{quote(str(name), safe='')}"
        if version is not None:
            path += f"/versions/{quote(str(version), safe='')}"
        return path

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        retry_on: Collection[int] = RETRY_STATUSES,
        accept: Collection[int] = (),
    ) -> requests.Response:
        """Send a request with retries; return a 2xx (or ``accept``-ed) answer, else raise."""
        url = self.base_url + path
        headers = {}
        if REQUEST_ID_HEADER not in self.session.headers:
            headers[REQUEST_ID_HEADER] = uuid.uuid4().hex
        request_id = headers.get(REQUEST_ID_HEADER) or self.session.headers[REQUEST_ID_HEADER]
        attempts = self.retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            retry_after = None
            try:
                response = self.session.request(
                    method, url, json=json, headers=headers, timeout=self.timeout
                )
            except requests.ReadTimeout:
                reason = f"no answer within {self.timeout:g} s"
                if method != "GET" or last:
                    # The server has the request; never send a POST again after this.
                    raise ApiUnavailable(
                        f"{method} {url}: {reason} (attempt {attempt + 1} of {attempts})",
                        request_id=request_id,
                    ) from None
            except requests.ConnectionError as error:
                reason = _connection_problem(error, self.timeout)
                if last:
                    raise ApiUnavailable(
                        f"cannot reach {self.base_url}: {reason} (after {attempts} attempts)"
                    ) from None
            else:
                status = response.status_code
                if status < 400 or status in accept:
                    return response
                if status not in retry_on or last:
                    raise ClientError.from_response(response)
                reason, retry_after = f"HTTP {status}", response.headers.get("Retry-After")
                response.close()
            wait = wait_seconds(attempt, self.backoff, retry_after)
            log.info("%s %s: %s; retry in %.2f s", method, path, reason, wait)
            time.sleep(wait)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def _json(self, response: requests.Response) -> Any:
        """The answer's JSON, or a :class:`ClientError` naming what came instead."""
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type")
            raise ClientError(
                f"expected JSON from {response.url}, got {kind}; is the base URL right?",
                response.status_code,
                "invalid_response",
                response.headers.get(REQUEST_ID_HEADER),
            ) from None


def _connection_problem(error: requests.ConnectionError, timeout: float) -> str:
    """A short reason for a connection failure, instead of urllib3's nested repr."""
    if isinstance(error, requests.ConnectTimeout):
        return f"no connection within {timeout:g} s"
    text = str(error)
    if "refused" in text.lower():
        return "connection refused (is the server running, on this port?)"
    if "Name or service not known" in text or "getaddrinfo" in text or "resolve" in text:
        return "unknown host name"
    return "connection failed"
