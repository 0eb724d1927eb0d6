#!/usr/bin/env bash
# Creates (once) the Python venv the tests use as a "foreign" Kafka client
# (confluent-kafka, not UltraCore's code) and prints its interpreter's path.
#
#   ULTRACORE_CACHE=~/.cache/ultracore   the venv lives in $ULTRACORE_CACHE/venv
#
# Idempotent and quiet on success: a venv that already has the pinned
# confluent-kafka is reused without touching pip.
set -euo pipefail

CONFLUENT_KAFKA_VERSION=2.12.0
CACHE="${ULTRACORE_CACHE:-$HOME/.cache/ultracore}"
VENV="$CACHE/venv"
PY="$VENV/bin/python"

installed() {
  "$PY" -c "import confluent_kafka, sys; sys.exit(confluent_kafka.__version__ != '$CONFLUENT_KAFKA_VERSION')" 2>/dev/null
}

if [ ! -x "$PY" ]; then
  mkdir -p "$CACHE"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    echo "python-env: 'python3 -m venv' failed; install python3-venv (apt-get install python3-venv)" >&2
    rm -rf "$VENV"
    exit 1
  fi
fi
if ! installed; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "confluent-kafka==$CONFLUENT_KAFKA_VERSION" >&2
  installed || { echo "python-env: confluent-kafka $CONFLUENT_KAFKA_VERSION did not install into $VENV" >&2; exit 1; }
fi
echo "$PY"
