"""The Open Inference Protocol's model repository extension: index, load, unload.

``POST /v2/repository/index`` lists every version of every model in the registry, with
its state in this server (``READY`` or ``UNAVAILABLE``, and why) and its aliases.
``POST /v2/repository/models/<name>/load`` loads a model again from the registry: every
version, the production one first; ``.../unload`` stops serving it. A request reaches
one worker: it records what was asked in the server's state file, applies it at once,
and the other workers follow within a poll (see :mod:`apps.api.extensions.rollout`).
These routes change what the server serves: with keys configured, only a key with the
``admin`` scope may call them.

As Triton's tritonclient does, a body may be left out (the index's), and ``load`` may
carry no model of its own (``parameters.config``, ``file:`` overrides): models come only
from the registry, verified.
"""

from typing import Any, Literal

from flask import Blueprint, current_app, jsonify, request
from pydantic import Field, RootModel
from typing_extensions import TypedDict

from apps.api import openapi
from apps.api.contracts import Body
from apps.api.errors import ApiError
from apps.api.formats import json_body, read
from apps.api.service import model_service
from apps.registry import RegistryError
from apps.registry.aliases import read_aliases

openapi.STATUS_TEXT.setdefault(409, "The registry's version could not be loaded")


class IndexRequest(Body):
    """What to list: every version, or only those ready."""

    ready: bool = Field(default=False, description="List only the versions that are ready.")


class LoadRequest(Body):
    """A load request: the model comes from the registry, nothing else."""

    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="None are supported: models come only from the registry.",
        json_schema_extra={"maxProperties": 0},  # a client sending some is told why (400)
    )


class UnloadParameters(Body):
    """The protocol's unload parameters."""

    unload_dependents: bool = Field(default=False, description="No model depends on another.")


class UnloadRequest(Body):
    """An unload request."""

    parameters: UnloadParameters = Field(default_factory=UnloadParameters)


class RepositoryEntry(TypedDict):
    name: str
    version: str
    state: Literal["READY", "UNAVAILABLE"]
    reason: str
    aliases: list[str]


class RepositoryIndex(RootModel[list[RepositoryEntry]]):
    """Every version in the registry, and its state in this server."""


class RepositoryAnswer(TypedDict):
    name: str
    state: Literal["READY", "UNAVAILABLE"]
    version: str | None


def optional_body() -> object:
    """The JSON body, or ``{}`` when there is none (tritonclient sends the index bare)."""
    return json_body(untyped_is_json=True) if request.content_length else {}


def entries(service) -> list[RepositoryEntry]:
    """One entry per version in the registry, of every model this server is set to serve."""
    found: list[RepositoryEntry] = []
    for name in service.names:
        try:
            versions = service.registry.versions(name)
            aliases = read_aliases(service.registry.root / name).versions
        except RegistryError as error:
            found.append({"name": name, "version": "", "state": "UNAVAILABLE",
                          "reason": str(error), "aliases": []})  # fmt: skip
            continue
        for version in versions:
            ready = (name, version) in service.models
            if ready:
                reason = ""
            elif name in service.unloaded:
                reason = "unloaded"
            else:
                reason = service.refused.get(name, "not loaded: it failed its checks, or is newer "
                                             "than the last load")  # fmt: skip
            named = sorted(a for a, v in aliases.items() if v == version)
            if service.production.get(name) == version and "production" not in named:
                named.append("production")  # the latest version, served while none is promoted
            found.append({"name": name, "version": str(version), "state": "READY" if ready
                          else "UNAVAILABLE", "reason": reason, "aliases": named})  # fmt: skip
    return found


def answer(name: str) -> RepositoryAnswer:
    service = model_service()
    version = service.production.get(name)
    state: Literal["READY", "UNAVAILABLE"] = "READY" if version is not None else "UNAVAILABLE"
    return {"name": name, "state": state, "version": None if version is None else str(version)}


def change(name: str, loaded: bool) -> None:
    """Record a load or an unload for every worker, and apply it in this one now."""
    service = model_service()
    if name not in service.names:
        raise ApiError(404, "model_not_found", f"no model named {name!r} is configured here")
    watcher = current_app.extensions["rollout"]
    watcher.state.change(name, loaded)
    try:
        watcher.apply_now(name)
    except Exception as error:
        raise ApiError(409, "load_failed", f"{name} could not be loaded: {error}") from None


def blueprint() -> Blueprint:
    """``/v2/repository/index`` and ``/v2/repository/models/<name>/load`` and ``/unload``."""
    bp = Blueprint("repository", __name__, url_prefix="/v2/repository")
    errors = (400, 404, 413, 415)

    @bp.post("/index")
    @openapi.documented("V2 model repository index", ("v2", "admin"), body=IndexRequest,
                        answer=RepositoryIndex, errors=errors)  # fmt: skip
    def index():
        """Every version of every model, its state in this server, and its aliases."""
        wanted = read(IndexRequest, optional_body())
        found = entries(model_service())
        return jsonify([e for e in found if e["state"] == "READY" or not wanted.ready])

    @bp.post("/models/<name>/load")
    @openapi.documented("Load {name} from the registry", ("v2", "admin"), body=LoadRequest,
                        answer=RepositoryAnswer, errors=(*errors, 409))  # fmt: skip
    def load(name: str):
        """Load a model again, every version, the production one first; 409 if that fails."""
        body = read(LoadRequest, optional_body())
        if body.parameters:
            raise ApiError(400, "bad_request", f"parameters {sorted(body.parameters)} are not "
                           "supported: models come only from the registry")  # fmt: skip
        change(name, loaded=True)
        return jsonify(answer(name))

    @bp.post("/models/<name>/unload")
    @openapi.documented("Unload {name}", ("v2", "admin"), body=UnloadRequest,
                        answer=RepositoryAnswer, errors=errors)  # fmt: skip
    def unload(name: str):
        """Stop serving a model (every version) until it is loaded again."""
        read(UnloadRequest, optional_body())
        change(name, loaded=False)
        return jsonify(answer(name))

    return bp
