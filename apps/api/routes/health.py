"""Liveness and readiness probes: open to all, cheap, and honest."""

from flask import Blueprint, jsonify

from apps.api.answers import Liveness, Readiness
from apps.api.openapi import documented
from apps.api.service import model_service


def blueprint() -> Blueprint:
    """``/health/live`` (the process answers) and ``/health/ready`` (models loaded)."""
    bp = Blueprint("health", __name__)

    @bp.get("/health/live")
    @documented("Liveness", ("health",), answer=Liveness)
    def live():
        """The process is up; restart it if this stops answering."""
        return jsonify(status="alive")

    @bp.get("/health/ready")
    @documented("Readiness", ("health",), answer=Readiness, errors=(503,), probe=True)
    def ready():
        """Ready only when every configured model is loaded and verified; else 503.

        ``models`` gives the version each model serves by default (its production
        version); ``refused``, a version that failed to replace it (notebook 08).
        """
        service = model_service()
        production = service.production
        answer: Readiness = {
            "status": "ready" if service.ready else "not ready",
            "models": {name: production.get(name) for name in service.names},
        }
        if not service.ready:
            answer["problems"] = service.problems
        if service.refused:  # a new version failed its checks: the old one still answers
            answer["refused"] = service.refused
        if service.unloaded:
            answer["unloaded"] = sorted(service.unloaded)
        return jsonify(answer), 200 if service.ready else 503

    @bp.get("/ping")
    @documented("Liveness, at MLflow's path", ("health",), answer=Liveness)
    def ping():
        """MLflow's health route, so MLflow users' probes keep working."""
        return jsonify(status="alive")

    return bp
