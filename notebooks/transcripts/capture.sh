#!/usr/bin/env bash
# Record the container transcripts that notebook 05 shows where no engine runs.
#
#   bash notebooks/transcripts/capture.sh      (Linux, root or password-less sudo, Podman)
#
# Notebook 05 teaches images, layers and compose; many laptops, and the test suite, have no
# container engine, so the notebook shows what a real one printed: the files 05-*.txt next
# to this script. This script makes them again, after a change of docker/ or of the apps:
# a first build and a cached rebuild after a code change, the lean image running (`id`,
# `import sklearn`, health), its layers (`image history`), the compose stack (`ps`
# healthy), the sizes of the four images and the largest packages of the full one.
#
# It runs Podman in a storage of its own (a temporary folder, removed at the end), so
# nothing it builds or tags touches other images on the machine, and every build starts
# cold. The base image is the local stand-in for python:3.11-slim that .ci/containers.sh
# makes (localhost/python-base:ci; run that script once first), tagged here with the name
# the Dockerfiles use. The build context is a copy of the working tree: the "code change"
# of the second build happens in the copy only.
#
# What varies from run to run is replaced, so that the files change only when the images
# do: image and layer ids and digests become <id>, times <time>; pip's download lines are
# shortened; lines longer than 110 characters are cut ("..."); Podman's complaints that
# there is no systemd to run health checks on a timer, and podman-compose's warning that
# this Podman cannot wait for "healthy" (it names the Podman version), are left out.
#
# Ports 8000 and 8501 of 127.0.0.1 must be free (the commands are the ones a learner types).
# On a shared machine, run it under the container lock: flock /tmp/podman.lock bash ...
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
OUT=$ROOT/notebooks/transcripts
SHARED_BASE=localhost/python-base:ci
PODMAN_COMPOSE=${PODMAN_COMPOSE:-$(ls "${XDG_CACHE_HOME:-$HOME/.cache}"/penguins-deploy-course/container-tools/*/bin/podman-compose 2>/dev/null | head -n 1)}
PIP_CA_FILE=${PIP_CA_FILE:-${SSL_CERT_FILE:-}}

fail() {
    echo "FAILED: $*" >&2
    exit 1
}
command -v podman >/dev/null || fail "podman is not installed (bash .ci/containers.sh installs it)"
[ -x "$PODMAN_COMPOSE" ] || fail "podman-compose not found (bash .ci/containers.sh installs it)"
podman image exists "$SHARED_BASE" || fail "no $SHARED_BASE: run bash .ci/containers.sh once"
for port in 8000 8501; do
    if python3 -c "import socket, sys; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; then
        fail "port $port of 127.0.0.1 is in use"
    fi
done
podman network exists docker_default && fail "a network docker_default exists already"

WORK=$(mktemp -d /tmp/penguins-transcripts.XXXXXX)
CONTEXT=$WORK/context
# The same sandbox workarounds as .ci/containers.sh (no CAP_SYS_RESOURCE; runc, not crun).
cat >"$WORK/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=8192:8192"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$WORK/containers.conf
# Keep HEALTHCHECK in images that podman-compose builds (the OCI format drops it).
export BUILDAH_FORMAT=docker
if [ -z "$PIP_CA_FILE" ] || [ ! -s "$PIP_CA_FILE" ]; then
    PIP_CA_FILE=$WORK/empty-ca.pem # the Dockerfiles skip an empty secret
    : >"$PIP_CA_FILE"
fi
export PIP_CA_FILE

# == a storage of our own =================================================================
podman save -o "$WORK/base.tar" "$SHARED_BASE" >/dev/null
cat >"$WORK/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$WORK/storage"
runroot = "$WORK/run"
EOF
export CONTAINERS_STORAGE_CONF=$WORK/storage.conf
STACK_UP=0
cleanup() {
    local status=$?
    set +e
    if [ "$STACK_UP" -eq 1 ]; then
        (cd "$CONTEXT" && "$PODMAN_COMPOSE" -f docker/compose.yaml -f docker/compose.ci.yaml down) >/dev/null 2>&1
    fi
    podman rm --force --ignore penguins-api-try >/dev/null 2>&1
    podman rmi --all --force >/dev/null 2>&1
    podman volume prune --force >/dev/null 2>&1
    findmnt -rn -o TARGET | grep "^$WORK/" | sort -r | xargs -r umount >/dev/null 2>&1
    rm -rf "$WORK"
    [ "$status" -eq 0 ] || echo "capture: FAILED (exit $status)" >&2
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
podman load -i "$WORK/base.tar" >/dev/null
podman tag "$SHARED_BASE" docker.io/library/python:3.11-slim
podman untag docker.io/library/python:3.11-slim "$SHARED_BASE"

# == the build context: a copy of the working tree ========================================
mkdir "$CONTEXT"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$CONTEXT"
cd "$CONTEXT"

# == recording ============================================================================
# clean FILE: keep what does not vary (see the header)
clean() {
    python3 - "$1" <<'EOF'
import re, sys
from pathlib import Path

path = Path(sys.argv[1])
kept, pip = [], []


def flush():
    """pip's output inside a RUN step: the first lines and the last, the middle counted."""
    if len(pip) > 10:
        pip[4:-5] = [f"    [... {len(pip) - 9} more lines of pip's output ...]"]
    kept.extend(pip)
    pip.clear()


in_run = False
for line in path.read_text().splitlines():
    if "systemd connection" in line or "━" in line or "doesn't support healthy" in line:
        continue
    line = re.sub(r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z| \+0000)?", "<time>", line)
    line = re.sub(r"\b(?:sha256:)?[0-9a-f]{11,64}\b", "<id>", line)
    line = re.sub(r" +\S+ MB/s eta \S+", "", line)
    if len(line) > 110:
        line = line[:107] + "..."
    starts_step = bool(re.match(r"(\[\d/\d\] )?STEP |--> ", line))
    if in_run and not starts_step:
        pip.append(line)
        continue
    if in_run:
        flush()
    in_run = bool(re.match(r"(\[\d/\d\] )?STEP \d+/\d+: RUN .*pip", line))
    kept.append(line)
flush()
path.write_text("\n".join(kept) + "\n")
EOF
}
# record NAME: run the commands given on stdin, one per line, each shown after "$ " with
# its output; a line that starts with "@" runs without being shown (waiting, mostly).
record() {
    local file=$OUT/$1 command
    : >"$file"
    while IFS= read -r command; do
        [ -n "$command" ] || continue
        if [ "${command:0:1}" = "@" ]; then
            bash -c "${command:1}" >/dev/null 2>&1 </dev/null || fail "${command:1}"
            continue
        fi
        printf '$ %s\n' "$command" >>"$file"
        # The commands come from this script, and show themselves as run; stdin is /dev/null,
        # or a command that reads it (podman healthcheck run) would eat the rest of the list.
        bash -c "$command" >>"$file" 2>&1 </dev/null || printf '(exit code %s)\n' "$?" >>"$file"
        printf '\n' >>"$file"
    done
    clean "$file"
    echo "wrote notebooks/transcripts/$1"
}
# wait_for URL SECONDS: until it answers 200
wait_for() {
    local deadline=$((SECONDS + $2))
    until curl -fs "$1" >/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || fail "$1 did not answer within $2 s"
        sleep 1
    done
}
export -f wait_for fail
PATH=$(dirname "$PODMAN_COMPOSE"):$PATH
export PATH

record 05-build-first.txt <<'EOF'
podman build --pull=never --format docker --network host --secret id=pip_ca,src="$PIP_CA_FILE" -f docker/api.Dockerfile --build-arg API_VARIANT=onnx -t penguins-api:onnx .
EOF

record 05-build-cached.txt <<'EOF'
echo "# a change of the API's code only" >> apps/api/service.py
podman build --pull=never --format docker --network host --secret id=pip_ca,src="$PIP_CA_FILE" -f docker/api.Dockerfile --build-arg API_VARIANT=onnx -t penguins-api:onnx .
EOF

record 05-run.txt <<'EOF'
podman run -d --rm --name penguins-api-try -p 127.0.0.1:8000:8000 -e API_KEYS=try-key penguins-api:onnx
@wait_for http://127.0.0.1:8000/health/ready 180
curl -s http://127.0.0.1:8000/health/ready; echo
podman exec penguins-api-try id
podman exec penguins-api-try python -c "import sklearn"
podman healthcheck run penguins-api-try && echo healthy
podman ps --format "table {{.Names}}\t{{.Image}}\t{{.Status}}\t{{.Ports}}"
podman stop penguins-api-try
EOF

record 05-history.txt <<'EOF'
podman image history --no-trunc --format "table {{.Size}}\t{{.CreatedBy}}" penguins-api:onnx
EOF

# The rest of the images, quietly: the full API, the UI and the batch job.
for spec in "api.Dockerfile penguins-api:full" "ui.Dockerfile penguins-ui:dev" "batch.Dockerfile penguins-batch:dev"; do
    read -r dockerfile image <<<"$spec"
    echo "building $image"
    podman build --pull=never --format docker --network host --secret id=pip_ca,src="$PIP_CA_FILE" -f "docker/$dockerfile" -t "$image" . >"$WORK/build-$image.log" 2>&1 ||
        { tail -n 30 "$WORK/build-$image.log"; fail "building $image"; }
done

record 05-image-sizes.txt <<'EOF'
podman image ls --format "table {{.Repository}}:{{.Tag}}\t{{.Size}}" --filter reference=penguins-* --filter reference=python
EOF

record 05-site-packages.txt <<'EOF'
podman run --rm --entrypoint sh penguins-api:full -c "du -sm /opt/venv/lib/python3.11/site-packages/* | sort -n | tail -n 8"
EOF

# == the compose stack ====================================================================
# The UI's key, and its hash in the API's key file, as notebook 05 makes them (in the copy).
mkdir -p secrets
python3 -m apps.api.keys new --name ui --add-to secrets/api_keys.txt --save-key secrets/ui_api_key.txt >/dev/null
chmod 644 secrets/api_keys.txt secrets/ui_api_key.txt
STACK_UP=1
record 05-compose.txt <<'EOF'
podman-compose -f docker/compose.yaml -f docker/compose.ci.yaml up -d
@wait_for http://127.0.0.1:8000/health/ready 180
@wait_for http://127.0.0.1:8501/_stcore/health 180
podman healthcheck run docker_api_1 && podman healthcheck run docker_ui_1 && echo healthy
podman-compose -f docker/compose.yaml -f docker/compose.ci.yaml ps --format "table {{.Names}}\t{{.Image}}\t{{.Status}}\t{{.Ports}}"
podman exec docker_ui_1 python -c "import urllib.request; print(urllib.request.urlopen('http://api:8000/health/ready').read().decode())"
podman-compose -f docker/compose.yaml -f docker/compose.ci.yaml down
EOF
STACK_UP=0
echo "done"
