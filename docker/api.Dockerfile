# The penguins API in a container: gunicorn serving the verified models on port 8000.
#
#   docker build -f docker/api.Dockerfile -t penguins-api:full .                        # both backends
#   docker build -f docker/api.Dockerfile --build-arg API_VARIANT=onnx -t penguins-api:onnx .  # lean
#
# Run from the repository's root: the build context is "." (see .dockerignore).
# Stage 1 ("build") makes a virtual environment with the pinned packages; stage 2 copies
# only that venv and the app onto a fresh base: no pip cache, no build tools.

# The base image, swappable at build time (CI builds on a local stand-in of it).
ARG BASE_IMAGE=python:3.11-slim

# ---- stage 1: the virtual environment ---------------------------------------------
FROM ${BASE_IMAGE} AS build

# full: ONNX Runtime and scikit-learn (API_BACKEND=onnx or sklearn);
# onnx: ONNX Runtime only, without scikit-learn, SciPy and pandas: a much smaller image.
ARG API_VARIANT=full
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /build
# Only the requirements first: this slow layer is rebuilt when they change, not when the
# code does.
# The pins with their hashes (tools/hash_pins.py): pip installs nothing else, and
# nothing whose content differs from what the index published.
COPY hashes/requirements-serve.txt hashes/requirements-serve-onnx.txt ./
# A CA bundle can be passed as a build secret (id pip_ca) for networks that intercept
# TLS; it is mounted for this command only and never lands in a layer.
RUN --mount=type=secret,id=pip_ca \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && case "$API_VARIANT" in \
        full) requirements="requirements-serve.txt" ;; \
        onnx) requirements="requirements-serve-onnx.txt" ;; \
        *) echo "API_VARIANT must be full or onnx, not '$API_VARIANT'" >&2; exit 1 ;; \
    esac \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-hashes --no-deps -r "$requirements" \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/pip uninstall --yes pip setuptools

# ---- stage 2: what runs ---------------------------------------------------------------
FROM ${BASE_IMAGE}

ARG API_VARIANT=full
ARG VERSION=dev
# The repository the image was built from (CI passes git's "origin" address).
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="penguins-api" \
      org.opencontainers.image.description="REST API serving the Palmer penguins models (variant: ${API_VARIANT})" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT"

# The venv first on PATH; the apps importable from /app without installing them;
# no .pyc files written at run time (the code is read-only); logs unbuffered. The user
# has no home folder: HOME=/tmp gives any tool that keeps files there a writable one.
# gunicorn listens on all interfaces *inside* the container: publishing the port
# (docker run -p 127.0.0.1:8000:8000) decides who can reach it from outside.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    API_HOST=0.0.0.0 \
    API_PORT=8000 \
    API_BACKEND=onnx

WORKDIR /app
COPY --from=build /opt/venv /opt/venv
# Only what the API imports, and the models it serves. The files stay owned by root:
# the server can read them, not change them.
COPY apps/__init__.py apps/config.py apps/
COPY apps/registry apps/registry/
COPY apps/api apps/api/
COPY apps/monitoring apps/monitoring/
COPY models models/
# The public keys whose signatures the registry accepts: read-only, like the code. The
# private keys that make signatures never enter an image (secrets/ is not in the context).
COPY trusted_keys trusted_keys/
# The prediction log's SQLite file (notebook 07) lives in /data, the one folder the
# server may write; mount a volume there to keep it (or set MONITORING_DB_URL to a
# PostgreSQL server).
RUN mkdir /data && chown 10001:10001 /data
ENV MONITORING_DB_URL=/data/monitoring.db

# Any unprivileged user will do; a number needs no /etc/passwd entry, and lets
# Kubernetes check "runAsNonRoot".
USER 10001:10001
EXPOSE 8000
# Ready means every model loaded and verified; slim images have no curl, Python will do.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('API_PORT', '8000'), timeout=4)"]
CMD ["python", "-m", "apps.api"]
