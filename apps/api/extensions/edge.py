"""The in-browser page of notebook 10, served by the API under ``/edge/``.

It serves the files of :mod:`apps.edge.site`: the page, the pinned onnxruntime-web, and
for each model version this API serves, its manifest and its ONNX file only, read once
at start-up after the registry has verified the folder. Nothing else under ``models/``
can be reached, least of all the pickles.

No API key is asked for, on purpose: the page's visitors have none to give, and a model
sent to a browser is public anyway, since anyone can save it. Where the models must
stay private, switch the page off: ``API_EDGE_PAGE=off`` (setting ``EDGE_PAGE``). An
installation without ``apps/edge`` (the API's Docker image) simply has no page. The
setting ``EDGE_RUNTIME_DIR`` says where onnxruntime-web is (tests move it).
"""

import hashlib
import logging
import os
from pathlib import Path

from flask import Blueprint, Flask, Response, redirect, request, send_file

from apps.api.errors import ApiError

log = logging.getLogger(__name__)

SWITCH = "API_EDGE_PAGE"
ON, OFF = ("on", "true", "1", "yes"), ("off", "false", "0", "no")


def enabled(app: Flask) -> bool:
    """The ``EDGE_PAGE`` setting, else ``$API_EDGE_PAGE``; on unless switched off."""
    value = app.config.get("EDGE_PAGE", os.environ.get(SWITCH) or "on")
    if isinstance(value, bool):
        return value
    if str(value).lower() in ON + OFF:
        return str(value).lower() in ON
    raise ValueError(f"{SWITCH} must be on or off, not {value!r}")


def init_app(app: Flask) -> None:
    """Collect the page's files once and mount them at ``/edge/``."""
    if not enabled(app):
        return
    try:
        from apps.edge import runtime, site
    except ModuleNotFoundError as error:
        if error.name != "apps.edge":
            raise
        log.info("apps.edge is not installed here: the API serves no /edge/ page")
        return
    service = app.extensions["model_service"]
    versions = sorted(service.models)  # only what the API itself loaded and serves
    files: dict[str, Path | bytes] = {
        **site.page_files(),
        **site.model_files(service.registry, versions, True),
    }
    try:
        files.update(site.runtime_files(app.config.get("EDGE_RUNTIME_DIR", runtime.RUNTIME_DIR)))
        problem = None
    except runtime.RuntimeMissing as error:
        problem = str(error)
        log.warning("the /edge/ page cannot work: %s", problem)
    app.register_blueprint(blueprint(files, problem, site.media_type))


def blueprint(files: dict[str, Path | bytes], problem: str | None, media_type) -> Blueprint:
    """``/edge/`` and the files under it. With a ``problem`` (the runtime is missing), the
    page and the runtime answer 503 with it; the models are still served.

    Every answer says ``Cache-Control: no-cache``: the browser keeps its copy and asks
    whether it is still current (a cheap 304), so a retrained model is never stale.
    """
    bp = Blueprint("edge", __name__, url_prefix="/edge")

    @bp.get("", strict_slashes=True)
    def bare():
        """``/edge`` redirects to ``/edge/``, so that the page's relative URLs resolve.

        The API's routing never redirects by itself (see the factory); this one target is
        a fixed path on this server, never a host taken from the request.
        """
        return redirect("/edge/", code=308)

    @bp.get("/", strict_slashes=True)
    @bp.get("/<path:name>")
    def page(name: str = "index.html"):
        """The page's files."""
        if problem and (name == "index.html" or name.startswith("ort/")):
            raise ApiError(503, "runtime_missing", problem)
        if name not in files:
            raise ApiError(404, "not_found", "the edge page has no such file")
        content = files[name]
        if isinstance(content, Path):
            response = send_file(content, conditional=True)
        else:
            response = Response(content)
            response.set_etag(hashlib.sha256(content).hexdigest())
            response.make_conditional(request)
        response.headers["Content-Type"] = media_type(name)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return bp
