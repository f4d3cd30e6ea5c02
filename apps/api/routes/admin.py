"""Routes for operators, not for clients: each needs a key with the ``admin`` scope.

``GET /v1/admin/keys`` lists the keys the server accepts at this moment, by name and
scope, never their hashes. During a rotation it shows that the server has read the key
file: both keys after the new one is added, then only the new one.
"""

from flask import Blueprint, jsonify
from typing_extensions import TypedDict

from apps.api.openapi import documented
from apps.api.security import api_keys


class KeyEntry(TypedDict):
    name: str
    scopes: list[str]


class KeyListing(TypedDict):
    keys: list[KeyEntry]


def blueprint() -> Blueprint:
    """The admin routes, under ``/v1/admin``; the factory protects them with ``admin``."""
    bp = Blueprint("admin", __name__, url_prefix="/v1/admin")

    @bp.get("/keys")
    @documented("The API keys in force, by name and scope", ("admin",), answer=KeyListing)
    def keys():
        """Names and scopes of the keys in force; the hashes stay on the server."""
        listing: KeyListing = {
            "keys": [{"name": k.name, "scopes": sorted(k.scopes)} for k in api_keys().keys]
        }
        return jsonify(listing)

    return bp
