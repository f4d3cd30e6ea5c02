"""When to try a request again, and how long to wait first.

Retrying is right only when the same request can succeed later and cannot do harm
when repeated:

* a connection error (refused, reset): nothing, or nothing usable, came back;
* 429 Too Many Requests and 503 Service Unavailable: the server says "not now".

Every other 4xx is the request's own fault and will fail the same way again, so it is
never retried. Waits grow exponentially (``backoff``, 2x, 4x, ...), so a struggling
server is not hammered, and a ``Retry-After`` header from the server wins, because the
server knows best when it will have room. Every wait is capped, so one odd header
cannot stall a caller for an hour.
"""

import email.utils
import time
from datetime import UTC, datetime

RETRY_STATUSES = frozenset({429, 503})
MAX_WAIT_SECONDS = 30.0


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - datetime.fromtimestamp(now, UTC).timestamp())


def wait_seconds(
    retry: int, backoff: float, retry_after: str | None = None, cap: float = MAX_WAIT_SECONDS
) -> float:
    """How long to wait before retry number ``retry`` (0 for the first retry).

    ``Retry-After`` if the server sent one, else ``backoff * 2**retry``; never more
    than ``cap`` seconds.
    """
    asked = retry_after_seconds(retry_after)
    wait = asked if asked is not None else backoff * 2**retry
    return min(max(wait, 0.0), cap)
