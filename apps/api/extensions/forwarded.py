"""Client addresses behind a reverse proxy, believed only when the proxy says them.

Behind nginx, every request reaches the API from the proxy's address, so rate limits
keyed by address would put all clients in one budget. The proxy sends the client's
address in ``X-Forwarded-For``, and Werkzeug's ``ProxyFix`` can put it in
``REMOTE_ADDR``; but ``ProxyFix`` believes whoever sends the header, so a client that
reaches the API directly could claim a fresh address with every request and never be
limited. This wrapper applies ``ProxyFix`` only to requests whose peer is one of the
trusted proxies (``API_TRUSTED_PROXIES``: addresses, networks or host names), and drops
the forwarding headers of every other request. Unset, nothing is trusted: the API
behaves as it did without a proxy.
"""

import ipaddress
import os
import socket
import time

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

RESOLVE_EVERY = 30.0
"""Seconds between two look-ups of a host name: a proxy restarted may get a new address."""
FORWARDING: tuple[str, ...] = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_PREFIX",
    "HTTP_FORWARDED",
)


def parse_trusted(value: str) -> list[str]:
    """``"proxy, 10.0.0.0/8"`` -> ``["proxy", "10.0.0.0/8"]``."""
    return [entry.strip() for entry in value.split(",") if entry.strip()]


class TrustedPeers:
    """Is this address one of the trusted proxies? Networks are checked as given; host
    names are looked up, at most every ``RESOLVE_EVERY`` seconds, and a name that does
    not resolve (the proxy not started yet) trusts nobody until it does."""

    def __init__(self, entries: list[str]):
        self.networks, self.names = [], []
        for entry in entries:
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.names.append(entry)
        self._resolved: set[str] = set()
        self._resolved_at = float("-inf")

    def _addresses_of_names(self) -> set[str]:
        if self.names and time.monotonic() - self._resolved_at > RESOLVE_EVERY:
            found: set[str] = set()
            for name in self.names:
                try:
                    found |= {str(info[4][0]) for info in socket.getaddrinfo(name, None)}
                except OSError:
                    continue
            self._resolved, self._resolved_at = found, time.monotonic()
        return self._resolved

    def __contains__(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False  # a Unix socket, say: no address to trust
        if any(ip in network for network in self.networks):
            return True
        return address in self._addresses_of_names()


class TrustedProxyFix:
    """WSGI middleware: ``ProxyFix`` for requests from a trusted proxy, none for others.

    ``hops`` is how many proxies in a row add to ``X-Forwarded-For`` (one: nginx).
    The client's scheme (``X-Forwarded-Proto``) is taken too, so URLs the API builds
    say https; the ``Host`` header is never taken from a forwarding header.
    """

    def __init__(self, app, trusted: TrustedPeers, hops: int = 1):
        self.app = app
        self.trusted = trusted
        self.fixed = ProxyFix(app, x_for=hops, x_proto=hops)

    def __call__(self, environ, start_response):
        if environ.get("REMOTE_ADDR", "") in self.trusted:
            return self.fixed(environ, start_response)
        for name in FORWARDING:  # what a client claims about itself is not believed
            environ.pop(name, None)
        return self.app(environ, start_response)


def init_app(app: Flask) -> None:
    """Wrap the app when ``API_TRUSTED_PROXIES`` names proxies (config, then environment)."""
    value = app.config.get("TRUSTED_PROXIES", os.environ.get("API_TRUSTED_PROXIES", ""))
    entries = parse_trusted(value) if isinstance(value, str) else list(value)
    hops = int(app.config.get("PROXY_HOPS", os.environ.get("API_PROXY_HOPS", "1")))
    app.wsgi_app = TrustedProxyFix(app.wsgi_app, TrustedPeers(entries), hops)  # type: ignore[method-assign]  # Flask's documented way to add WSGI middleware
