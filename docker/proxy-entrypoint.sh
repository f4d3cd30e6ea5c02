#!/bin/sh
# Start nginx with docker/nginx.conf, its @NAMES@ filled in from the environment. The
# root file system is read-only, so the finished file goes to /tmp (a tmpfs).
#   PUBLIC_HTTPS_PORT  the HTTPS port clients use, for the HTTP redirect (default 443)
#   HSTS_MAX_AGE       seconds browsers keep to HTTPS only (default 31536000, a year)
#   API_UPSTREAM       the API's replicas, host:port (default api:8000, compose's name)
set -eu
port=${PUBLIC_HTTPS_PORT:-443}
suffix=":$port"
if [ "$port" = 443 ]; then suffix=""; fi
sed -e "s|@PUBLIC_HTTPS_SUFFIX@|$suffix|" \
    -e "s|@HSTS_MAX_AGE@|${HSTS_MAX_AGE:-31536000}|" \
    -e "s|@API_UPSTREAM@|${API_UPSTREAM:-api:8000}|" \
    /etc/nginx/penguins.conf.template >/tmp/nginx.conf
exec nginx -e stderr -c /tmp/nginx.conf -g "daemon off;"
