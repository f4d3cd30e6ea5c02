# Redis for the API's shared rate-limit counts: Debian's redis-server on the same base
# as the other images, as an unprivileged user, keeping nothing on disk.
#
#   docker build -f docker/redis.Dockerfile -t penguins-redis .

ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG VERSION=dev
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="penguins-redis" \
      org.opencontainers.image.description="Redis for the penguins API's shared rate limits" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT"

# Debian's version of the base image's release, as for nginx in proxy.Dockerfile.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && redis-server --version

USER 10001:10001
EXPOSE 6379
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["redis-cli", "ping"]
# Counts live in memory only: no snapshot, no append-only file. Reachable only on the
# compose network (no port on the host); a bound on memory, evicting the counts nearest
# to their end first.
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", \
     "--appendonly", "no", "--dir", "/tmp", "--maxmemory", "64mb", "--maxmemory-policy", "volatile-ttl"]
