#!/usr/bin/env bash
# Starts a PostgreSQL server for the test suite (Debian's package, a cluster
# of its own on 127.0.0.1:54329) and prints its URL. Idempotent: an existing
# cluster is reused and started if stopped. Needs root.
#
#   export SEASHELL_TEST_POSTGRES_URL="$(scripts/postgres.sh)"
set -euo pipefail

port=54329
cluster=seashelltest
user=seashell
password=seashell-test-only
database=seashell_test

[ "$(id -u)" -eq 0 ] || { echo "postgres.sh: must run as root" >&2; exit 1; }

if ! command -v pg_createcluster >/dev/null; then
    echo "postgres.sh: installing postgresql" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
fi

version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
[ -n "$version" ] || { echo "postgres.sh: no PostgreSQL server under /usr/lib/postgresql" >&2; exit 1; }

if ! pg_lsclusters -h | awk '{print $2}' | grep -qx "$cluster"; then
    pg_createcluster --port "$port" "$version" "$cluster" >&2
fi
if ! pg_lsclusters -h | awk -v c="$cluster" '$2 == c {print $4}' | grep -qx online; then
    pg_ctlcluster "$version" "$cluster" start >&2
fi

psql_as_postgres() { runuser -u postgres -- psql -p "$port" -v ON_ERROR_STOP=1 -qAt "$@"; }
if [ "$(psql_as_postgres -c "SELECT 1 FROM pg_roles WHERE rolname = '$user'")" != 1 ]; then
    psql_as_postgres -c "CREATE ROLE $user LOGIN CREATEDB PASSWORD '$password'" >&2
fi
if [ "$(psql_as_postgres -c "SELECT 1 FROM pg_database WHERE datname = '$database'")" != 1 ]; then
    psql_as_postgres -c "CREATE DATABASE $database OWNER $user" >&2
fi

echo "postgres://$user:$password@127.0.0.1:$port/$database"
