"""The API as the benchmarks run it: ``python -m apps.api`` on a free port, up to ready.

Started, waited for and stopped by :mod:`apps.processes`, as the stack and the tests
start it; the benchmarks do not import the tests.
"""

import contextlib
import os
from collections.abc import Iterator

from apps.processes import free_port, running
from apps.stack import api_command


@contextlib.contextmanager
def running_api(env: dict[str, str], startup_seconds: float = 120) -> Iterator[str]:
    """The API with ``env`` added to this environment; yields its URL once it is ready."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(api_command(port), f"{url}/health/ready", {**os.environ, **env}, None,
                 startup_seconds):  # fmt: skip
        yield url
