# The penguins UI in a container: Streamlit on port 8501, calling the API over HTTP.
#
#   docker build -f docker/ui.Dockerfile -t penguins-ui .
#   docker run -p 127.0.0.1:8501:8501 -e PENGUINS_API_URL=http://host.docker.internal:8000 penguins-ui
#
# Run from the repository's root: the build context is "." (see .dockerignore).
# Same shape as api.Dockerfile: a build stage makes the venv, the final stage copies it.

ARG BASE_IMAGE=python:3.11-slim

# ---- stage 1: the virtual environment ---------------------------------------------
FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
# The pins with their hashes (tools/hash_pins.py), as in api.Dockerfile.
COPY hashes/requirements-ui.txt ./
RUN --mount=type=secret,id=pip_ca \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-hashes --no-deps -r requirements-ui.txt \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/pip uninstall --yes pip setuptools

# ---- stage 2: what runs ---------------------------------------------------------------
FROM ${BASE_IMAGE}

ARG VERSION=dev
# The repository the image was built from (CI passes git's "origin" address).
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="penguins-ui" \
      org.opencontainers.image.description="Streamlit web UI for the Palmer penguins models, backed by the penguins API" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT"

# Streamlit reads its settings from STREAMLIT_* variables: listen on all interfaces
# inside the container, no browser to open, no usage statistics sent anywhere.
# PENGUINS_API_URL is where the API is: in compose, the service named "api".
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    STREAMLIT_SERVER_PORT=8501 \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    PENGUINS_API_URL=http://api:8000

WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY docker/ui-entrypoint.sh /app/ui-entrypoint.sh
# The UI's code, the client it calls the API with, and the modules they import
# (schemas from the registry, the bundled data); no models: the API has them.
COPY apps/__init__.py apps/config.py apps/data.py apps/
COPY apps/registry apps/registry/
COPY apps/client apps/client/
COPY apps/ui apps/ui/

USER 10001:10001
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/_stcore/health' % os.environ.get('STREAMLIT_SERVER_PORT', '8501'), timeout=4)"]
ENTRYPOINT ["/bin/sh", "/app/ui-entrypoint.sh"]
# The entry script: the one place that names it.
CMD ["apps/ui/app.py"]
