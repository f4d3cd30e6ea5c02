"""Client addresses behind a proxy: ``X-Forwarded-For`` is believed only from the proxy.

Without a key, the rate limit counts per client address. A client that may name its own
address in ``X-Forwarded-For`` gets a fresh budget with every request; so the header is
used only when the request comes from a trusted proxy (``API_TRUSTED_PROXIES``), and
every other request is limited by the address it really comes from. Each test runs the
real server and counts the answers.
"""

import os
from collections import Counter

import pytest
import requests

from apps.api.extensions.forwarded import TrustedPeers

from .conftest import RECORD
from .servers import running_api

LIMIT = 3
PREDICT = "/v1/models/species-classifier/predict"


def statuses(url: str, forwarded_for: list[str]) -> Counter:
    """One prediction per claimed address, in order; count the answers."""
    counts = Counter()
    for address in forwarded_for:
        response = requests.post(
            url + PREDICT, json={"record": RECORD}, headers={"X-Forwarded-For": address}, timeout=30
        )
        counts[response.status_code] += 1
    return counts


def limited(**extra) -> dict:
    return {"API_BACKEND": "onnx", "API_RATE_LIMIT": f"{LIMIT}/minute", **extra}


SPOOFED = [f"203.0.113.{n}" for n in range(1, 3 * LIMIT + 1)]
"""A client claiming a new address with every request (TEST-NET-3 addresses)."""


SERVERS = ["waitress"] if os.name == "nt" else ["gunicorn", "waitress"]


@pytest.mark.slow
@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("trusted", [None, "192.0.2.7", "198.51.100.0/24"])
def test_a_client_cannot_escape_the_limit_by_claiming_addresses(trusted, server):
    env = limited(**({"API_TRUSTED_PROXIES": trusted} if trusted else {}))
    with running_api(env, server=server) as url:
        counts = statuses(url, SPOOFED)
    assert counts == {200: LIMIT, 429: len(SPOOFED) - LIMIT}, counts


@pytest.mark.slow
@pytest.mark.parametrize("server", SERVERS)
def test_behind_a_trusted_proxy_each_client_has_its_own_budget(server):
    # The test plays the proxy: it connects from 127.0.0.1, which is trusted here.
    with running_api(limited(API_TRUSTED_PROXIES="127.0.0.1"), server=server) as url:
        spread = statuses(url, SPOOFED)
        one_client = statuses(url, ["198.51.100.9"] * (LIMIT + 2))
    assert spread == {200: len(SPOOFED)}, spread
    assert one_client == {200: LIMIT, 429: 2}, one_client


def test_trusted_peers_by_address_network_and_name():
    peers = TrustedPeers(["10.0.0.0/8", "192.0.2.7", "localhost", "no-such-host.invalid"])
    assert "10.1.2.3" in peers and "192.0.2.7" in peers
    assert "127.0.0.1" in peers  # localhost, looked up
    assert "192.0.2.8" not in peers and "not an address" not in peers
    assert "127.0.0.1" not in TrustedPeers([])
