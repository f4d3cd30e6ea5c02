"""API keys with scopes, rate limits and CORS: what stands between the models and the internet.

Each route needs a scope: ``predict`` for the model routes, ``admin`` for routes that
change what the server does. A request without a valid key gets 401; a valid key that
lacks the route's scope gets 403 (the server knows who asks, and refuses anyway). Keys
are kept as hashes and compared in constant time (:mod:`apps.api.keys`). Health routes,
``/metrics`` and the docs stay open: probes and scrapers carry no keys.
"""

import ipaddress
import logging
from collections.abc import Callable
from pathlib import Path

from flask import Blueprint, Flask, current_app, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from apps.api import limiter_storage  # noqa: F401 - registers the sqlite:// store
from apps.api.config import SettingsError
from apps.api.errors import ApiError
from apps.api.keys import SCOPES, ApiKey, KeyFileError, KeyRing, KeySource, plain_keys

API_KEY_HEADER = "X-API-Key"
log = logging.getLogger(__name__)


def presented_key() -> str:
    """The key from ``X-API-Key``, or from ``Authorization: Bearer <key>``."""
    key = request.headers.get(API_KEY_HEADER, "")
    if not key:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else ""
    return key


def api_keys() -> KeyRing:
    """The keys in force now (the key file is read again when it changes)."""
    return current_app.extensions["api_keys"].current()


def presented_entry() -> ApiKey | None:
    """The entry of the request's key, if it presents a valid one."""
    key = presented_key()
    return api_keys().match(key) if key else None


def require_scope(scope: str) -> Callable[[], None]:
    """A ``before_request`` hook: 401 without a valid key, 403 if the key lacks ``scope``.

    With no key configured at all, every route is open (a laptop). Use it on a
    blueprint (``protect(bp, limiter, scope="admin")`` does) or call the returned
    function at the top of a view.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, not {scope!r}")

    def check_scope() -> None:
        if not api_keys() or request.method == "OPTIONS":  # CORS preflights carry no keys
            return
        if not presented_key():
            raise ApiError(
                401,
                "unauthorized",
                f"an API key is required in the {API_KEY_HEADER} header",
                headers={"WWW-Authenticate": "ApiKey"},
            )
        entry = presented_entry()
        if entry is None:
            raise ApiError(
                401,
                "unauthorized",
                "the API key is not valid",
                headers={"WWW-Authenticate": "ApiKey"},
            )
        g.api_key_name = entry.name
        if scope not in entry.scopes:
            raise ApiError(
                403, "forbidden", f"this API key does not have the '{scope}' scope this route needs"
            )

    check_scope.scope = scope  # type: ignore[attr-defined]
    return check_scope


def rate_limit_key() -> str:
    """Limit per valid API key (hashed, never stored in clear), else per client address.

    Invalid keys count against the address: guessing keys must not buy fresh budgets.
    """
    entry = presented_entry()
    if entry is not None:
        return "key:" + entry.digest.hex()[:16]
    return "address:" + (get_remote_address() or "unknown")


def protect(blueprint: Blueprint, limiter: Limiter, scope: str = "predict") -> Blueprint:
    """Require a key with ``scope`` on every route of a blueprint, and apply the rate limit.

    The limit is one budget per client across all protected routes (a shared scope),
    not one per route. The blueprint keeps its ``scope``, which the OpenAPI document
    reads to list the key and the 401, 403 and 429 answers.
    """
    blueprint.scope = scope  # type: ignore[attr-defined]
    blueprint.before_request(require_scope(scope))
    limiter.shared_limit(
        lambda: current_app.config["RATE_LIMIT"] or "1/second",
        scope="api",
        exempt_when=lambda: not current_app.config["RATE_LIMIT"],
    )(blueprint)
    return blueprint


def key_source(settings: dict) -> KeySource:
    """The keys of the settings; a missing, empty or plain-text key file stops the start."""
    key_file = settings["API_KEYS_FILE"]
    try:
        return KeySource(
            plain_keys(tuple(settings["API_KEYS"]), frozenset({"predict"}), "api-keys")
            + plain_keys(tuple(settings["API_ADMIN_KEYS"]), frozenset({"admin"}), "api-admin-keys"),
            Path(key_file) if key_file else None,
        )
    except KeyFileError as error:
        raise SettingsError(str(error)) from None


def init_security(app: Flask) -> Limiter:
    """Load the keys, create the app's rate limiter, and enable CORS only for the origins
    configured.

    The counts live where ``RATE_LIMIT_STORAGE`` says; by default in this process's
    memory, which is right for one process (waitress, the test client) and wrong for
    several: each gunicorn worker would count on its own, and grant the whole budget.
    ``python -m apps.api`` therefore gives gunicorn's workers a shared SQLite file
    (see ``gunicorn_conf.py``), and Redis shares the counts across machines. A store
    that does not answer stops the server at start, not at the first request.
    """
    app.extensions["api_keys"] = key_source(app.config)
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


def warn_if_open(hosts: list[str], keys: bool) -> None:
    """Log a warning if the server listens beyond this machine with no API keys."""
    exposed = sorted({host or "every interface" for host in hosts if not is_loopback(host)})
    if exposed and not keys:
        log.warning(
            "no API keys are configured and the server listens on %s: anyone who can "
            "reach it can use the models; set API_KEYS_FILE",
            ", ".join(exposed),
        )
