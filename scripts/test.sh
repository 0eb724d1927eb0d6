#!/usr/bin/env bash
# Runs every UltraCore test, starting what the tests need first:
#   - a Kafka-protocol broker (Tansu) on 127.0.0.1:19092, built once and cached
#     in ~/.cache/ultracore (on a fresh machine it builds beside the workspace);
#   - a Python venv with confluent-kafka, the "foreign" Kafka client the
#     interoperability tests write with, and the official MCP SDK, the
#     client of the MCP server's tests;
#   - a throwaway PostgreSQL cluster (Debian's packages) on 127.0.0.1:55432
#     with wal_level=logical, for the read models and change capture on
#     PostgreSQL (scripts/pg-up.sh); one with wal_level=replica on 55433; and
#     one on 55434 that accepts only TLS, with a throwaway CA (PG_SSL=1), for
#     the TLS tests of every sslmode;
#   - Debian's Chromium and playwright-core (npm) for the web console's
#     tests in a real browser, and promtool for the shipped alert rules.
# Idempotent: a second run reuses the cached binary, the venv and a running broker.
set -euo pipefail
cd "$(dirname "$0")/.."

export ULTRACORE_CACHE="${ULTRACORE_CACHE:-$HOME/.cache/ultracore}"
export KAFKA_PORT="${ULTRACORE_TEST_KAFKA_PORT:-19092}"

log() { echo "[test $(date +%T)] $*" >&2; }

# Tools the build needs beyond the Rust toolchain (librdkafka builds from its
# bundled source), util-linux's fincore (page-cache residency in the
# embedded log's tests) and the sqlite3 shell (change capture of a writer in
# another process).
need=()
for tool in make gcc g++ pkg-config fincore sqlite3; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing the packages that provide ${need[*]}"
  apt-get update -qq && apt-get install -y -qq build-essential pkg-config util-linux sqlite3 >/dev/null
fi
# promtool (Debian's prometheus package) checks deploy/prometheus/*.yml in
# crates/lag/tests/deploy.rs, which ULTRACORE_REQUIRE_PROMTOOL makes fail
# rather than skip without it; chromium renders the console in its tests.
extra=()
command -v promtool >/dev/null 2>&1 || extra+=(prometheus)
command -v chromium >/dev/null 2>&1 || extra+=(chromium)
if [ ${#extra[@]} -gt 0 ]; then
  log "installing ${extra[*]}"
  apt-get update -qq && apt-get install -y -qq "${extra[@]}" >/dev/null
fi
export ULTRACORE_REQUIRE_PROMTOOL=1

# On a fresh machine the broker builds while the workspace builds: each
# build leaves a core idle for long stretches (linking, a crate everything
# waits for), and the two fill each other's gaps.
broker_build_log="$(mktemp /tmp/ultracore-broker-build.XXXXXX)"
scripts/kafka-up.sh --binary >"$broker_build_log" 2>&1 &
broker_build=$!
trap 'kill "$broker_build" 2>/dev/null || true' EXIT

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked --no-run "$@"

if ! wait "$broker_build"; then
  log "building the test broker failed; its output follows"
  cat "$broker_build_log" >&2
  exit 1
fi
rm -f "$broker_build_log"
log "starting the test broker on 127.0.0.1:$KAFKA_PORT, on empty storage"
scripts/kafka-up.sh --fresh
export ULTRACORE_TEST_KAFKA="127.0.0.1:$KAFKA_PORT"
# Outage tests start, kill and restart brokers of their own with this binary.
ULTRACORE_TEST_TANSU="$(scripts/kafka-up.sh --binary)"
export ULTRACORE_TEST_TANSU

log "starting the test PostgreSQL cluster on 127.0.0.1 (wal_level=logical)"
ULTRACORE_TEST_PG="$(scripts/pg-up.sh --url)"
# A second one with wal_level=replica: change capture must refuse it, naming the setting.
ULTRACORE_TEST_PG_REPLICA="$(PG_PORT=55433 PG_WAL_LEVEL=replica scripts/pg-up.sh --url)"
# A third that accepts only TLS (hostssl), its certificate for localhost and
# 127.0.0.1 signed by a throwaway CA: the TLS tests connect with each sslmode.
ULTRACORE_TEST_PG_TLS="$(PG_PORT=55434 PG_SSL=1 scripts/pg-up.sh --url)"
ULTRACORE_TEST_PG_TLS_CA="$(PG_PORT=55434 PG_SSL=1 scripts/pg-up.sh --ca)"
export ULTRACORE_TEST_PG ULTRACORE_TEST_PG_REPLICA ULTRACORE_TEST_PG_TLS ULTRACORE_TEST_PG_TLS_CA

log "preparing the Python test client"
ULTRACORE_TEST_PYTHON="$(scripts/python-env.sh)"
export ULTRACORE_TEST_PYTHON
# The checkers the tests use (Debezium's envelope, OpenLineage's RunEvent),
# checked themselves.
for check in tools/test_validate_change_events.py tools/test_validate_openlineage.py; do
  if ! out="$("$ULTRACORE_TEST_PYTHON" "$check" 2>&1)"; then
    echo "$out" >&2
    exit 1
  fi
done

# The tests must not pick up a user's broker or data dir by accident.
unset KAFKA_BOOTSTRAP_SERVERS EVENT_STORE_TYPE ULTRACORE_LOG ULTRACORE_DATA_DIR KAFKA_TOPIC_PREFIX
# The test broker shares two cores with the whole suite: the services the
# tests start wait longer for its first answer than a deployment would.
export KAFKA_CONNECT_TIMEOUT_MS=30000

cargo test --workspace --locked "$@"

# The web console in a real browser: Debian's Chromium, headless, driven by
# playwright-core (from npm, pinned by tests/console/package-lock.json)
# against the `ultracore` the tests just built. Screenshots of every page go
# to tests/console/screenshots/.
log "testing the console in headless Chromium"
(cd tests/console && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
ULTRACORE_BIN="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/ultracore" \
  node --test --test-concurrency=1 tests/console/console.test.mjs
