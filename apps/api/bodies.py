"""Request bodies read within limits: never cut short in silence, never parsed when too big.

One request must not take a worker's memory from everyone else, and a client must never
get fewer answers than it sent rows without an error. Each body is bounded three ways:

* **bytes**: a body longer than its limit gets a 413. Werkzeug stops reading a body
  sent without ``Content-Length`` (``Transfer-Encoding: chunked``) at the limit and
  returns what it read, as if the body ended there. :class:`BoundedRequest` reads one
  byte past the limit: if that byte comes, the body was too long.
* **JSON values**: parsing makes one Python object per value, tens of bytes each for a
  few bytes of JSON (``{},`` is 3 bytes; an empty dict, 64). The values a body can hold
  are counted before parsing, cheaply, from the characters that open them.
* **CSV rows**: read one at a time, stopping one row past the record limit.
"""

import io
import itertools
from typing import cast

from flask import Flask, Request, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from apps.api.errors import ApiError, too_many_records
from apps.api.service import model_service
from apps.registry import InputSchema
from apps.registry.tabular import CsvError, iter_csv


class BoundedRequest(Request):
    """Flask's request, whose body is either read whole or refused with a 413.

    ``body_limit`` is this request's limit in bytes; by default the app's
    ``MAX_CONTENT_LENGTH``. A route that accepts a denser format (CSV) sets its own
    before it reads the body.
    """

    body_limit: int | None = None

    def effective_body_limit(self) -> int | None:
        """The limit in bytes that applies to this request's body."""
        if self.body_limit is not None:
            return self.body_limit
        return current_app.config["MAX_CONTENT_LENGTH"] if current_app else None

    @property
    def max_content_length(self) -> int | None:
        """What Werkzeug may read: one byte more than the limit, to see if it is there.

        Read-only: set ``body_limit`` to change the limit of one request.
        """
        limit = self.effective_body_limit()
        return None if limit is None else limit + 1

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        raise AttributeError("max_content_length is read-only: set body_limit instead")

    def body_stream(self):
        """The body as a stream to read in pieces; reading past the limit raises a 413.

        A declared ``Content-Length`` over the limit is refused before any reading; a
        chunked body raises when the byte past the limit is read.
        """
        limit = self.effective_body_limit()
        if limit is not None and (self.content_length or 0) > limit:
            raise RequestEntityTooLarge()
        return self.stream

    def get_data(self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False):
        """The whole body, or :class:`RequestEntityTooLarge` if it exceeds the limit."""
        data = super().get_data(cache=cache, as_text=False, parse_form_data=parse_form_data)
        limit = self.effective_body_limit()
        if limit is not None and len(data) > limit:
            raise RequestEntityTooLarge()
        return data.decode(errors="replace") if as_text else data


def init_bodies(app: Flask) -> None:
    """Make every request of the app a :class:`BoundedRequest`."""
    app.request_class = BoundedRequest


# --- JSON: count the values before parsing them -------------------------------------


def json_value_bound(data: bytes) -> int:
    """An upper bound on the values in a JSON text, found without parsing it.

    In an array or an object every element but the first follows a comma, and the
    first follows the bracket that opens it; the text itself is one more value. Commas
    and brackets inside strings count too, so the bound can be generous, never short.
    ``bytes.count`` makes it cost a few milliseconds for the largest body.
    """
    return data.count(b",") + data.count(b"[") + data.count(b"{") + 1


def json_value_limit(max_records: int, widest: int) -> int:
    """The most values a request of ``max_records`` records can need.

    The widest layout is the Open Inference Protocol's with one list per value
    (``[[v], [v], ...]``): two per cell. Four per record more leave room for the
    containers around them, and 64 for the keys of the request itself.
    """
    return max_records * (2 * widest + 4) + 64


def json_bytes() -> bytes:
    """The JSON body, refused with a 413 if it is too long or holds more values than
    any valid request needs, before anything parses it."""
    return within_value_limit(request.get_data())


def within_value_limit(data: bytes) -> bytes:
    """``data``, if the JSON text holds no more values than a valid request needs; else 413."""
    service = model_service()
    limit = json_value_limit(service.max_records, service.widest)
    if json_value_bound(data) > limit:
        raise ApiError(
            413,
            "too_many_values",
            f"the JSON body holds more values than {service.max_records} records can need "
            f"(at most {limit}); send at most {service.max_records} records per request",
        )
    return data


# --- CSV: one row at a time, up to the record limit -----------------------------------


def csv_records(schema: InputSchema, max_records: int) -> list[dict]:
    """The CSV body's rows as records, read one at a time and never past the limits.

    The byte limit is ``MAX_CSV_BYTES``: a CSV record takes fewer bytes than a JSON one,
    so the same number of bytes would hold many more rows. Reading stops at the first
    row past ``max_records``: the rest of the body is never parsed.
    """
    bounded = cast(BoundedRequest, request)  # every request is one (init_bodies)
    bounded.body_limit = current_app.config["MAX_CSV_BYTES"]
    text = io.TextIOWrapper(
        io.BufferedReader(bounded.body_stream()), encoding="utf-8", errors="replace", newline=""
    )
    try:
        records = list(itertools.islice(iter_csv(text, schema), max_records + 1))
    except CsvError as error:
        raise ApiError(400, "bad_request", str(error)) from None
    if len(records) > max_records:
        raise too_many_records(f"more than {max_records}", max_records)
    return records
