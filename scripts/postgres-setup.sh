#!/usr/bin/env bash
# Installs Debian's PostgreSQL, starts a cluster on loopback and makes the role and database
# the tests use, then prints the database's SQLAlchemy URL.
# Idempotent and fast once done: when the URL already answers, nothing else runs.
# Needs root (apt, and running commands as the postgres user).
#
# The role may create databases: the tests make one per pytest worker and drop it after.
# Its sessions commit without waiting for the disk (synchronous_commit = off, set on the
# role only): nothing else on the server is changed.
set -euo pipefail

PORT="${CRUNCH_PG_PORT:-5432}"
ROLE="${CRUNCH_PG_ROLE:-crunch}"
PASSWORD="${CRUNCH_PG_PASSWORD:-crunch}"
DATABASE="${CRUNCH_PG_DATABASE:-crunch_test}"
URL="postgresql+psycopg://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DATABASE"

log() { echo "== postgres-setup: $*" >&2; }

ready() {
  # The role can log in over TCP with its password, reach its database and create others.
  PGPASSWORD="$PASSWORD" PGCONNECT_TIMEOUT=3 psql -h 127.0.0.1 -p "$PORT" -U "$ROLE" \
    -d "$DATABASE" -tAqc "SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user" \
    2>/dev/null | grep -qx t
}

install_packages() {
  if command -v pg_ctlcluster >/dev/null && compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
    return
  fi
  log "installing postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
}

as_postgres() { (cd / && runuser -u postgres -- "$@"); }

start_cluster() {
  local version name status
  # The cluster serving our port, else a new one (Debian's install normally made "main").
  read -r version name status < <(pg_lsclusters -h | awk -v port="$PORT" '$3 == port {print $1, $2, $4; exit}') || true
  if [ -z "${version:-}" ]; then
    version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
    name=main
    if [ -d "/etc/postgresql/$version/$name" ]; then
      name=crunch  # "main" exists on another port: leave it alone
    fi
    log "creating cluster $version/$name on port $PORT"
    pg_createcluster --port "$PORT" "$version" "$name" >/dev/null
    status=down
  fi
  if [ "$status" != online ]; then
    local pidfile="/var/lib/postgresql/$version/$name/postmaster.pid"
    if [ -f "$pidfile" ]; then
      # Left by a server that did not stop (a machine restart): if its pid now belongs to
      # another process, the server would refuse to start.
      local pid
      pid="$(head -n 1 "$pidfile")"
      if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != postgres ]; then
        rm -f "$pidfile"
      fi
    fi
    log "starting cluster $version/$name"
    pg_ctlcluster "$version" "$name" start
  fi
  for _ in $(seq 1 150); do
    pg_isready -q -h 127.0.0.1 -p "$PORT" && return
    sleep 0.2
  done
  echo "PostgreSQL did not come up on 127.0.0.1:$PORT; see /var/log/postgresql/" >&2
  exit 1
}

make_role_and_database() {
  log "role $ROLE, database $DATABASE"
  as_postgres psql -p "$PORT" -v ON_ERROR_STOP=1 -qAt >/dev/null <<SQL
SELECT 'CREATE ROLE "$ROLE"' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') \gexec
ALTER ROLE "$ROLE" LOGIN CREATEDB PASSWORD '$PASSWORD';
ALTER ROLE "$ROLE" SET synchronous_commit = off;
SELECT 'CREATE DATABASE "$DATABASE" OWNER "$ROLE"'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DATABASE') \gexec
SQL
}

if [ "$(id -u)" -ne 0 ]; then
  echo "postgres-setup.sh: run as root" >&2
  exit 1
fi
if ! command -v psql >/dev/null || ! ready; then
  install_packages
  start_cluster
  make_role_and_database
  ready || { echo "postgres-setup: $URL does not answer" >&2; exit 1; }
fi
echo "$URL"
