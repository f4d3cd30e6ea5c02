#!/bin/sh
# Start the Streamlit UI; the script to run comes from the image's CMD (or `docker run`).
# Compose hands the API key over as a secret *file*; apps.client reads the key from
# $PENGUINS_API_KEY, so the first key of that file is put there, for this process only.
set -eu
if [ -z "${PENGUINS_API_KEY:-}" ] && [ -n "${PENGUINS_API_KEY_FILE:-}" ]; then
    PENGUINS_API_KEY=$(grep -v '^#' "$PENGUINS_API_KEY_FILE" | grep -m 1 . || true)
    export PENGUINS_API_KEY
fi
exec python -m streamlit run "$@"
