#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on 127.0.0.1 for perturblab's tuning-storage test.
#
#   source .ci/postgres.sh     # exports PERTURBLAB_TEST_PG_URL
#   bash .ci/postgres.sh       # prints the URL (export it yourself)
#
# Installs PostgreSQL with apt-get when its binaries are missing, creates a fresh cluster in
# $PERTURBLAB_PG_DIR (default /tmp/perturblab-pg) owned by the postgres user, starts it on
# 127.0.0.1:$PERTURBLAB_PG_PORT (default 5433, so a distribution cluster on 5432 is left alone),
# and creates the database perturblab_test. Password auth (scram) over TCP; the password is a
# test-only value for a server that listens on the loopback interface only.
set -euo pipefail

PG_PORT="${PERTURBLAB_PG_PORT:-5433}"
PG_DIR="${PERTURBLAB_PG_DIR:-/tmp/perturblab-pg}"
PG_DB=perturblab_test
PG_PASSWORD="${PERTURBLAB_PG_PASSWORD:-perturblab-test}"

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

if ! BIN="$(pg_bin)"; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  BIN="$(pg_bin)"
fi

as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi; }

if ! as_pg "$BIN/pg_ctl" -D "$PG_DIR" status >/dev/null 2>&1; then
  rm -rf "$PG_DIR"
  mkdir -p "$PG_DIR"
  chown postgres "$PG_DIR"
  pwfile="$(mktemp)"
  printf '%s\n' "$PG_PASSWORD" > "$pwfile"
  chown postgres "$pwfile"
  as_pg "$BIN/initdb" -D "$PG_DIR" -U postgres --pwfile="$pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  as_pg "$BIN/pg_ctl" -D "$PG_DIR" -l "$PG_DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR" start >/dev/null
fi

pg_client() { as_pg env PGPASSWORD="$PG_PASSWORD" "$BIN/$1" -h 127.0.0.1 -p "$PG_PORT" -U postgres "${@:2}"; }
if ! pg_client psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
  pg_client createdb "$PG_DB"
fi

export PERTURBLAB_TEST_PG_URL="postgresql+psycopg2://postgres:${PG_PASSWORD}@127.0.0.1:${PG_PORT}/${PG_DB}"
echo "PERTURBLAB_TEST_PG_URL=$PERTURBLAB_TEST_PG_URL"
