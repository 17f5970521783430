#!/usr/bin/env bash
# Installs PostgreSQL from Debian's packages (if missing), starts a private
# cluster on a loopback port (if not running) and creates the test database.
# Idempotent. Prints one line on stdout for the caller to eval:
#   export ASSAY_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/assay_test
# Everything else goes to stderr.
#
#   eval "$(bash scripts/ci-postgres.sh)"
#
# Settings: ASSAY_PG_PORT (default 55432), ASSAY_PG_DATA (default /var/tmp/assay-pg).
set -euo pipefail

PORT="${ASSAY_PG_PORT:-55432}"
DATA="${ASSAY_PG_DATA:-/var/tmp/assay-pg}"
DB=assay_test

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

BIN="$(find_bin || true)"
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
    echo "ci-postgres: installing postgresql from Debian's packages" >&2
    if [ "$(id -u)" -ne 0 ]; then
        echo "ci-postgres: PostgreSQL is not installed and this is not root: run 'apt-get install -y postgresql' as root" >&2
        exit 1
    fi
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    BIN="$(find_bin)"
fi

# initdb and the server refuse to run as root: use the postgres user then.
as_db_user() {
    if [ "$(id -u)" -eq 0 ]; then
        su postgres -s /bin/sh -c "$1"
    else
        sh -c "$1"
    fi
}

if [ ! -f "$DATA/PG_VERSION" ]; then
    echo "ci-postgres: creating a cluster in $DATA" >&2
    mkdir -p "$DATA"
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$DATA"; fi
    chmod 700 "$DATA"
    as_db_user "'$BIN/initdb' -D '$DATA' -A trust -U postgres -E UTF8 >/dev/null"
fi

if ! as_db_user "'$BIN/pg_ctl' -D '$DATA' status" >/dev/null 2>&1; then
    echo "ci-postgres: starting PostgreSQL on 127.0.0.1:$PORT" >&2
    as_db_user "'$BIN/pg_ctl' -D '$DATA' -l '$DATA/server.log' -w -t 60 \
        -o \"-p $PORT -c listen_addresses=127.0.0.1 -k /tmp -c max_connections=200\" start" >&2
fi

PSQL="$BIN/psql -h 127.0.0.1 -p $PORT -U postgres -v ON_ERROR_STOP=1 -qtA"
if [ "$($PSQL -c "SELECT 1 FROM pg_database WHERE datname = '$DB'" postgres)" != "1" ]; then
    $PSQL -c "CREATE DATABASE $DB" postgres >&2
fi

echo "export ASSAY_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$PORT/$DB"
