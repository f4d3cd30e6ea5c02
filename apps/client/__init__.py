"""A small, typed Python client for the course's API, built on ``requests.Session``.

Other apps (the UI, the batch job) call the API through this package instead of
hand-writing HTTP calls, so timeouts, retries and error handling are decided once::

    from apps.client import PenguinClient, ClientError, ApiUnavailable

    client = PenguinClient()  # $PENGUINS_API_URL and $PENGUINS_API_KEY, or local defaults
    client.predict("species-classifier", {"island": "Dream", "bill_length_mm": 46.5})
"""

from apps.client.client import PenguinClient
from apps.client.errors import ApiUnavailable, ClientError

__all__ = ["ApiUnavailable", "ClientError", "PenguinClient"]
