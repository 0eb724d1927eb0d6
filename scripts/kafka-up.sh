#!/usr/bin/env bash
# Starts a Kafka-protocol broker (Tansu 0.6.0, built with cargo install) on 127.0.0.1
# for the Kafka backend's tests and for trying Kafka mode locally.
#
#   KAFKA_PORT=19092                       listener port (loopback only)
#   TANSU_STORAGE=sqlite                   sqlite (durable, survives restarts) | memory (fast, volatile)
#   ULTRACORE_CACHE=~/.cache/ultracore     where the broker binary is cached (built once per machine)
#   TANSU_OPT_LEVEL=1                      the broker's optimization level when it is built
#   TANSU_DATA=/tmp/ultracore-tansu-$KAFKA_PORT   data dir (tansu.db, broker.log, broker.pid)
#
# Idempotent: exits at once if something already listens on the port.
# `kafka-up.sh --fresh` first stops the broker it started on the port and
# deletes its storage, so the broker starts empty (the test suite does this:
# Tansu slows down as its sqlite storage grows, run after run).
# `kafka-up.sh --binary` only builds the broker if needed and prints its path.
# Quiet on success; it speaks only while building the broker or when it fails.
# Stop with: kill "$(cat "$TANSU_DATA/broker.pid")"
set -euo pipefail

KAFKA_PORT="${KAFKA_PORT:-19092}"
TANSU_STORAGE="${TANSU_STORAGE:-sqlite}"
TANSU_VERSION=0.6.0
CACHE="${ULTRACORE_CACHE:-$HOME/.cache/ultracore}"
TANSU_ROOT="$CACHE/tansu-$TANSU_VERSION"
TANSU_BIN="$TANSU_ROOT/bin/tansu"
TANSU_DATA="${TANSU_DATA:-/tmp/ultracore-tansu-$KAFKA_PORT}"

log() { echo "[kafka-up $(date +%T)] $*" >&2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null; }

if [ "${1:-}" = "--fresh" ]; then
  pidfile="$TANSU_DATA/broker.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")"
    for _ in $(seq 1 100); do
      kill -0 "$(cat "$pidfile")" 2>/dev/null || break
      sleep 0.1
    done
  fi
  if port_open; then
    log "port $KAFKA_PORT is held by a process this script did not start (no live pid in $pidfile):"
    log "stop it, or pick another port (KAFKA_PORT, or ULTRACORE_TEST_KAFKA_PORT for scripts/test.sh)"
    exit 1
  fi
  rm -f "$TANSU_DATA"/tansu.db "$TANSU_DATA"/tansu.db-wal "$TANSU_DATA"/tansu.db-shm
  if [ -f "$TANSU_DATA/broker.log" ]; then mv "$TANSU_DATA/broker.log" "$TANSU_DATA/broker.log.1"; fi
elif [ "${1:-}" != "--binary" ] && port_open; then
  exit 0
fi

if [ ! -x "$TANSU_BIN" ]; then
  log "building tansu $TANSU_VERSION with cargo install into $TANSU_ROOT (once per machine) ..."
  build_dir="$(mktemp -d /tmp/tansu-build.XXXXXX)"
  # A cheaper profile than crates' release default: opt-level 1, no LTO, no
  # debug info. The broker built this way serves the test suite at its speed
  # (README, "Tests") and builds in about half the time.
  CARGO_TARGET_DIR="$build_dir" \
  CARGO_PROFILE_RELEASE_OPT_LEVEL="${TANSU_OPT_LEVEL:-1}" \
  CARGO_PROFILE_RELEASE_LTO=off \
  CARGO_PROFILE_RELEASE_DEBUG=0 \
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install tansu --version "$TANSU_VERSION" --locked --quiet \
    --no-default-features --features libsql,dynostore --root "$TANSU_ROOT"
  rm -rf "$build_dir"   # ~1.5 GB of intermediates
fi
if [ "${1:-}" = "--binary" ]; then
  echo "$TANSU_BIN"
  exit 0
fi

mkdir -p "$TANSU_DATA"
case "$TANSU_STORAGE" in
  sqlite) STORAGE_URL="sqlite://tansu.db" ;;   # relative to the data dir
  memory) STORAGE_URL="memory://tansu/" ;;
  *) log "unknown TANSU_STORAGE=$TANSU_STORAGE (sqlite|memory)"; exit 2 ;;
esac
(
  cd "$TANSU_DATA"
  nohup "$TANSU_BIN" broker \
    --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --storage-engine "$STORAGE_URL" >>broker.log 2>&1 &
  echo $! > broker.pid
)
for _ in $(seq 1 100); do
  if port_open; then exit 0; fi
  kill -0 "$(cat "$TANSU_DATA/broker.pid")" 2>/dev/null || break
  sleep 0.1
done
log "broker failed to start; its log follows"
cat "$TANSU_DATA/broker.log" >&2
exit 1
