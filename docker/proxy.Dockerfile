# The reverse proxy in front of the API: nginx from Debian's packages, on the same base
# as the other images, running as an unprivileged user on ports 8080 (HTTP, redirects)
# and 8443 (HTTPS).
#
#   docker build -f docker/proxy.Dockerfile -t penguins-proxy .
#
# The certificate and its key are never in the image: compose mounts them as secrets
# (/run/secrets/tls_cert, /run/secrets/tls_key). See docker/make_certs.py.

ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG VERSION=dev
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="penguins-proxy" \
      org.opencontainers.image.description="TLS-terminating, buffering reverse proxy (nginx) in front of the penguins API" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT"

# Debian's nginx, in the version of the base image's release; no pin: the base image
# (pinned by digest if you like, see compose.yaml) decides it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/* \
    && nginx -v

COPY docker/nginx.conf /etc/nginx/penguins.conf.template
COPY docker/proxy-entrypoint.sh /usr/local/bin/proxy-entrypoint.sh

USER 10001:10001
EXPOSE 8080 8443
# The HTTP port only redirects; a 308 from it means nginx answers.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python3", "-c", "import http.client as h; c = h.HTTPConnection('127.0.0.1', 8080, timeout=2); c.request('GET', '/'); assert c.getresponse().status == 308"]
ENTRYPOINT ["/bin/sh", "/usr/local/bin/proxy-entrypoint.sh"]
