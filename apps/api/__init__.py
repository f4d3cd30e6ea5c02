"""The course's REST API: the registry's models served over HTTP with Flask.

The application factory is :func:`apps.api.app.create_app`. This package file stays
empty on purpose: ``python -m apps.api`` must be able to configure Prometheus'
multi-process mode before anything imports ``prometheus_client``.
"""
