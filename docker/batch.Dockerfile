# The batch job in a container: `python -m apps.batch` with the ONNX backend.
#
#   docker build -f docker/batch.Dockerfile -t penguins-batch .
#   docker run --rm -v "$PWD/data:/data" penguins-batch \
#       score /data/incoming --model species-classifier --output /data/scored/2026-11-30
#
# Run from the repository's root: the build context is "." (see .dockerignore). The same
# two stages as api.Dockerfile; no scikit-learn, pandas or Dask: the local engine and
# the ONNX backend, which give the same files as any other engine.

ARG BASE_IMAGE=python:3.11-slim

# ---- stage 1: the virtual environment ---------------------------------------------
FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
# The pins with their hashes (tools/hash_pins.py), as in api.Dockerfile.
COPY hashes/requirements-batch.txt ./
RUN --mount=type=secret,id=pip_ca \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-hashes --no-deps -r requirements-batch.txt \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/pip uninstall --yes pip setuptools

# ---- stage 2: what runs ---------------------------------------------------------------
FROM ${BASE_IMAGE}

ARG VERSION=dev
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="penguins-batch" \
      org.opencontainers.image.description="Batch scoring of CSV and Parquet files with the Palmer penguins models" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp

WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY apps/__init__.py apps/config.py apps/
COPY apps/registry apps/registry/
COPY apps/batch apps/batch/
COPY models models/
COPY trusted_keys trusted_keys/

# Inputs and outputs are mounted under /data; the output folder must be writable by
# this user (10001), nothing else is.
USER 10001:10001
WORKDIR /data
ENTRYPOINT ["python", "-m", "apps.batch"]
CMD ["score", "--help"]
