#!/usr/bin/env bash
# Creates (once) the Python venv the tests use as "foreign" clients, not
# UltraCore's code, and prints its interpreter's path:
#   - confluent-kafka: a Kafka client the interoperability tests write with;
#   - mcp: the official MCP SDK, the client of the MCP server's tests;
#   - jsonschema: the JSON Schema validator that checks change events
#     against Debezium's envelope.
#
#   ULTRACORE_CACHE=~/.cache/ultracore   the venv lives in $ULTRACORE_CACHE/venv
#
# Idempotent and quiet on success: a venv that already has the pinned
# versions is reused without touching pip.
set -euo pipefail

CONFLUENT_KAFKA_VERSION=2.12.0
MCP_VERSION=2.3.0
JSONSCHEMA_VERSION=4.26.0
CACHE="${ULTRACORE_CACHE:-$HOME/.cache/ultracore}"
VENV="$CACHE/venv"
PY="$VENV/bin/python"

installed() {
  "$PY" - <<PYEOF 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(version("confluent-kafka") != "$CONFLUENT_KAFKA_VERSION" or version("mcp") != "$MCP_VERSION"
         or version("jsonschema") != "$JSONSCHEMA_VERSION")
PYEOF
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
  # The MCP SDK needs Python 3.10 or newer.
  "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
    echo "python-env: the MCP SDK needs Python >= 3.10; $("$PY" --version) is too old" >&2
    exit 1
  }
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "confluent-kafka==$CONFLUENT_KAFKA_VERSION" "mcp==$MCP_VERSION" "jsonschema==$JSONSCHEMA_VERSION" >&2
  installed || { echo "python-env: confluent-kafka $CONFLUENT_KAFKA_VERSION, mcp $MCP_VERSION and jsonschema $JSONSCHEMA_VERSION did not install into $VENV" >&2; exit 1; }
fi
echo "$PY"
