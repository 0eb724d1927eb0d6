#!/usr/bin/env bash
# Creates (once) the Python venv the tests use as a foreign Kafka client and
# prints its interpreter's path.
set -euo pipefail
CACHE="${ULTRACORE_CACHE:-$HOME/.cache/ultracore}"
VENV="$CACHE/venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" >&2
fi
if ! "$VENV/bin/python" -c 'import confluent_kafka' 2>/dev/null; then
  "$VENV/bin/pip" install -q 'confluent-kafka==2.12.0' >&2
fi
echo "$VENV/bin/python"
