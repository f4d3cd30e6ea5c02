"""API keys, rate limits and CORS: what stands between the models and the internet.

Keys are compared in constant time, so response timing does not reveal how much of a
guessed key was right. Health routes stay open: probes carry no keys.
"""

import hashlib
import hmac
import ipaddress
import logging

from flask import Blueprint, Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from apps.api import limiter_storage  # noqa: F401 - registers the sqlite:// store
from apps.api.config import SettingsError
from apps.api.errors import ApiError

API_KEY_HEADER = "X-API-Key"
log = logging.getLogger(__name__)


def presented_key() -> str:
    """The key from ``X-API-Key``, or from ``Authorization: Bearer <key>``."""
    key = request.headers.get(API_KEY_HEADER, "")
    if not key:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else ""
    return key


def key_is_valid(key: str, keys: tuple[str, ...]) -> bool:
    """Compare with every configured key, each in constant time, without stopping early."""
    given = key.encode()
    matches = [hmac.compare_digest(given, k.encode()) for k in keys]
    return any(matches)


def require_api_key() -> None:
    """``before_request`` hook for protected blueprints: 401 without a valid key."""
    keys = current_app.config["API_KEYS"]
    if not keys or request.method == "OPTIONS":  # CORS preflights never carry keys
        return
    key = presented_key()
    if not key:
        raise ApiError(
            401,
            "unauthorized",
            f"an API key is required in the {API_KEY_HEADER} header",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    if not key_is_valid(key, keys):
        raise ApiError(
            401, "unauthorized", "the API key is not valid", headers={"WWW-Authenticate": "ApiKey"}
        )


def rate_limit_key() -> str:
    """Limit per valid API key (hashed, never stored in clear), else per client address.

    Invalid keys count against the address: guessing keys must not buy fresh budgets.
    """
    key = presented_key()
    if key and key_is_valid(key, current_app.config["API_KEYS"]):
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
    return "address:" + (get_remote_address() or "unknown")


def protect(blueprint: Blueprint, limiter: Limiter) -> Blueprint:
    """Require an API key on every route of a blueprint and apply the rate limit.

    The limit is one budget per client across all protected routes (a shared scope),
    not one per route. The blueprint is marked ``protected``, which the OpenAPI
    document reads to list the key and the 401 and 429 answers.
    """
    blueprint.protected = True  # type: ignore[attr-defined]
    blueprint.before_request(require_api_key)
    limiter.shared_limit(
        lambda: current_app.config["RATE_LIMIT"] or "1/second",
        scope="api",
        exempt_when=lambda: not current_app.config["RATE_LIMIT"],
    )(blueprint)
    return blueprint


def init_security(app: Flask) -> Limiter:
    """Create the app's rate limiter, and enable CORS only for the origins configured.

    The counts live where ``RATE_LIMIT_STORAGE`` says; by default in this process's
    memory, which is right for one process (waitress, the test client) and wrong for
    several: each gunicorn worker would count on its own, and grant the whole budget.
    ``python -m apps.api`` therefore gives gunicorn's workers a shared SQLite file
    (see ``gunicorn_conf.py``), and Redis shares the counts across machines. A store
    that does not answer stops the server at start, not at the first request.
    """
    app.config["RATELIMIT_STORAGE_URI"] = app.config["RATE_LIMIT_STORAGE"] or "memory://"
    # With no limit set, the limiter's hook is switched off entirely: it costs time
    # on every request even when it has nothing to count.
    app.config.setdefault("RATELIMIT_ENABLED", bool(app.config["RATE_LIMIT"]))
    limiter = Limiter(key_func=rate_limit_key, app=app, headers_enabled=True)
    if app.config["RATELIMIT_ENABLED"]:
        scheme = app.config["RATELIMIT_STORAGE_URI"].partition(":")[0]
        if not limiter.storage.check():
            raise SettingsError(f"the rate-limit store ({scheme}) does not answer")
        log.info("rate limit %s per client, counted in %s", app.config["RATE_LIMIT"], scheme)
    if app.config["CORS_ORIGINS"]:
        from flask_cors import CORS

        CORS(
            app,
            origins=list(app.config["CORS_ORIGINS"]),
            allow_headers=["Content-Type", API_KEY_HEADER, "Authorization", "X-Request-ID"],
        )
    return limiter


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine (127.0.0.1, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name, or "" (every interface)
        return False


def warn_if_open(hosts: list[str], keys: tuple[str, ...]) -> None:
    """Log a warning if the server listens beyond this machine with no API keys."""
    exposed = sorted({host or "every interface" for host in hosts if not is_loopback(host)})
    if exposed and not keys:
        log.warning(
            "no API keys are configured and the server listens on %s: anyone who can "
            "reach it can use the models; set API_KEYS or API_KEYS_FILE",
            ", ".join(exposed),
        )
