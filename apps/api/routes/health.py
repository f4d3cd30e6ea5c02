"""Liveness and readiness probes: open to all, cheap, and honest."""

from flask import Blueprint, current_app, jsonify


def blueprint() -> Blueprint:
    """``/health/live`` (the process answers) and ``/health/ready`` (models loaded)."""
    bp = Blueprint("health", __name__)

    @bp.get("/health/live")
    def live():
        """The process is up; restart it if this stops answering."""
        return jsonify(status="alive")

    @bp.get("/health/ready")
    def ready():
        """Ready only when every configured model is loaded and verified; else 503."""
        service = current_app.extensions["model_service"]
        body = {
            "status": "ready" if service.ready else "not ready",
            "models": {name: service.latest.get(name) for name in service.names},
        }
        if not service.ready:
            body["problems"] = service.problems
        return jsonify(body), 200 if service.ready else 503

    @bp.get("/ping")
    def ping():
        """MLflow's health route, so MLflow users' probes keep working."""
        return jsonify(status="alive")

    return bp
