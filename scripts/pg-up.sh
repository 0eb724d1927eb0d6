#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster on 127.0.0.1 for the PostgreSQL
# tests (read models, change data capture) and for trying PostgreSQL mode
# locally. PostgreSQL comes from Debian's packages (apt); the cluster runs
# as the `postgres` user, because PostgreSQL refuses to run as root.
#
#   PG_PORT=55432                          listener port (loopback only)
#   PG_WAL_LEVEL=logical                   wal_level of a new cluster (the tests also run one
#                                          with replica, to see change capture refuse it)
#   PG_HOME=/var/tmp/ultracore-pg-$PG_PORT where the cluster lives: data/ (owned by
#                                          postgres), ultracore.password, server.log
#   PG_SSL=1                               a new cluster speaks TLS only (see below); the
#                                          tests run one on 55434 beside the plain one
#
# The cluster has wal_level=logical (change data capture by logical
# replication) and one login role, `ultracore`, with the REPLICATION and
# CREATEDB attributes (tests make a database each) and its own database
# `ultracore`. Its password is generated when
# the cluster is created and kept in $PG_HOME/ultracore.password (mode 0600);
# it is never printed except inside the URL `--url` prints.
#
# With PG_SSL=1, creating the cluster also makes a throwaway CA and a server
# certificate signed by it for localhost and 127.0.0.1 (openssl, installed
# from Debian's packages if missing), turns ssl on, and makes every pg_hba
# line `hostssl`, so the server refuses TCP connections without TLS. The
# CA's private key is deleted once it has signed: nothing else can be
# signed with it. Clients verify the server with $PG_HOME/ca.crt
# (`?sslmode=verify-full&sslrootcert=$PG_HOME/ca.crt`). PG_SSL only matters
# when the cluster is created: an existing cluster keeps what it has.
#
#   pg-up.sh           starts the cluster unless it runs (creates it first if needed)
#   pg-up.sh --fresh   stops and deletes the cluster, then creates and starts a new one
#   pg-up.sh --url     starts it if needed and prints postgres://ultracore:…@127.0.0.1:PORT/ultracore
#   pg-up.sh --ca      starts it if needed and prints the path of its CA certificate
#                      (fails unless the cluster was created with PG_SSL=1)
#   pg-up.sh --stop    stops it
#
# Quiet on success; it speaks while installing or when it fails.
set -euo pipefail

PG_PORT="${PG_PORT:-55432}"
PG_HOME="${PG_HOME:-/var/tmp/ultracore-pg-$PG_PORT}"
PG_DATA="$PG_HOME/data"
PG_WAL_LEVEL="${PG_WAL_LEVEL:-logical}"
PG_SSL="${PG_SSL:-0}"
mode="${1:-}"

log() { echo "[pg-up $(date +%T)] $*" >&2; }

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "$dir" ] && [ -x "$dir/postgres" ]; then echo "$dir"; fi
}

bin="$(pg_bin)"
if [ -z "$bin" ]; then
  log "installing PostgreSQL from Debian's packages (apt) ..."
  export DEBIAN_FRONTEND=noninteractive
  # The package's own cluster is not used: do not let the install start it.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq && apt-get install -y -qq postgresql postgresql-client >/dev/null
  rm -f /usr/sbin/policy-rc.d
  bin="$(pg_bin)"
  [ -n "$bin" ] || { log "PostgreSQL installed, but no server binary under /usr/lib/postgresql/*/bin"; exit 1; }
fi

# A throwaway CA, and a server certificate it signs for localhost and
# 127.0.0.1 (the names clients verify with sslmode=verify-full); ssl on, and
# TCP connections without TLS refused (hostssl). EC P-256 keys: quick to make.
make_tls() {
  if ! command -v openssl >/dev/null 2>&1; then
    log "installing openssl from Debian's packages (apt) ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq openssl >/dev/null
  fi
  local work
  work="$(mktemp -d)"
  cat >"$work/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = UltraCore throwaway test CA
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  if ! (
    set -e
    umask 077
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -config "$work/openssl.cnf" -extensions ca -keyout "$work/ca.key" -out "$PG_HOME/ca.crt"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -config "$work/openssl.cnf" -subj "/CN=localhost" -keyout "$PG_HOME/server.key" \
      -out "$work/server.csr"
    openssl x509 -req -in "$work/server.csr" -CA "$PG_HOME/ca.crt" -CAkey "$work/ca.key" \
      -CAcreateserial -CAserial "$work/ca.srl" -days 3650 -extfile "$work/openssl.cnf" \
      -extensions server -out "$PG_HOME/server.crt"
  ) >"$work/openssl.log" 2>&1; then
    log "making the test certificates failed; openssl said:"
    cat "$work/openssl.log" >&2
    rm -rf "$work"
    exit 1
  fi
  rm -rf "$work"
  chown postgres:postgres "$PG_HOME/server.key" "$PG_HOME/server.crt" "$PG_HOME/ca.crt"
  chmod 0600 "$PG_HOME/server.key"
  chmod 0644 "$PG_HOME/server.crt" "$PG_HOME/ca.crt"
  cat >>"$PG_DATA/postgresql.conf" <<EOF
ssl = on
ssl_cert_file = '$PG_HOME/server.crt'
ssl_key_file = '$PG_HOME/server.key'
EOF
  sed -i -E 's/^host([[:space:]])/hostssl\1/' "$PG_DATA/pg_hba.conf"
}

running() { [ -f "$PG_DATA/postmaster.pid" ] && as_postgres "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }

stop() {
  if running; then as_postgres "$bin/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null; fi
}

case "$mode" in
  --stop) stop; exit 0 ;;
  --fresh) stop; rm -rf "$PG_HOME" ;;
  ""|--url|--ca) ;;
  *) log "unknown option '$mode': use --fresh, --url, --ca or --stop"; exit 2 ;;
esac

if [ ! -f "$PG_DATA/PG_VERSION" ]; then
  rm -rf "$PG_HOME"
  mkdir -p "$PG_DATA"
  chown postgres:postgres "$PG_HOME" "$PG_DATA"
  chmod 0700 "$PG_HOME" "$PG_DATA"
  password="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  pwfile="$PG_HOME/ultracore.password"
  (umask 077 && printf '%s' "$password" >"$pwfile")
  chown postgres:postgres "$pwfile"
  as_postgres "$bin/initdb" -D "$PG_DATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >"$PG_HOME/initdb.log" 2>&1 || { cat "$PG_HOME/initdb.log" >&2; exit 1; }
  cat >>"$PG_DATA/postgresql.conf" <<EOF

# ultracore test cluster
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DATA'
wal_level = $PG_WAL_LEVEL
max_replication_slots = 32
max_wal_senders = 32
max_connections = 200
shared_buffers = 128MB
logging_collector = off
EOF
  # Replication connections (logical replication) need their own pg_hba line.
  echo "host replication ultracore 127.0.0.1/32 scram-sha-256" >>"$PG_DATA/pg_hba.conf"
  if [ "$PG_SSL" = 1 ]; then make_tls; fi
  as_postgres "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_HOME/server.log" -w start >/dev/null
  as_postgres "$bin/psql" -h "$PG_DATA" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
    -v pw="$password" >/dev/null <<'SQL'
CREATE ROLE ultracore LOGIN REPLICATION CREATEDB PASSWORD :'pw';
CREATE DATABASE ultracore OWNER ultracore;
SQL
fi

if ! running; then
  as_postgres "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_HOME/server.log" -w start >/dev/null || {
    log "PostgreSQL did not start; its log follows"
    tail -n 40 "$PG_HOME/server.log" >&2
    exit 1
  }
fi

# Clusters made by an earlier version of this script: the role may lack CREATEDB.
as_postgres "$bin/psql" -h "$PG_DATA" -p "$PG_PORT" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
  -c "ALTER ROLE ultracore CREATEDB" >/dev/null

if [ "$mode" = --ca ]; then
  if [ ! -f "$PG_HOME/ca.crt" ]; then
    log "the cluster in $PG_HOME has no TLS: create it with PG_SSL=1 (PG_SSL=1 PG_PORT=$PG_PORT $0 --fresh)"
    exit 1
  fi
  printf '%s\n' "$PG_HOME/ca.crt"
fi

if [ "$mode" = --url ]; then
  printf 'postgres://ultracore:%s@127.0.0.1:%s/ultracore\n' "$(cat "$PG_HOME/ultracore.password")" "$PG_PORT"
fi
