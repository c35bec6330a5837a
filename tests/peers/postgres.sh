#!/usr/bin/env bash
# The PostgreSQL the test suite talks to, brought up on a fresh machine.
#
# Installs Debian's `postgresql` when it is absent, starts its cluster, and makes sure the
# test role exists (password login over loopback, CREATEDB, not a superuser: the tests
# create and drop their own databases, as an application role would). The role is also a
# member of pg_signal_backend: `DROP DATABASE ... WITH (FORCE)` must end an autovacuum worker
# that is still on a database a test has just written to, and without that membership it
# fails ("must be a member of the role whose process is being terminated"). Idempotent, and a
# no-op taking a few milliseconds when the server already answers, so `make test` runs it
# every time. Needs root (or passwordless sudo) only when something has to be installed,
# started or created; without it, says what to run and exits non-zero.
#
# The tests read the server from OTEL_DIAG_TEST_PG; its default is the URL printed here.
set -euo pipefail

ROLE=otel_diag_test
PASSWORD=test-only-pw
PORT=5432
URL="postgresql://${ROLE}:${PASSWORD}@127.0.0.1:${PORT}/postgres"

say() { echo "postgres.sh: $*" >&2; }

# "t": logs in and may end autovacuum workers; "f": logs in without that grant; "": no login.
GRANTED="SELECT pg_has_role(current_user, 'pg_signal_backend', 'member')"
state=$(command -v psql >/dev/null && psql "$URL" -Atqc "$GRANTED" 2>/dev/null || true)
if [ "$state" = t ]; then
  exit 0
fi

can_root() {
  [ "$(id -u)" = 0 ] || { command -v sudo >/dev/null && sudo -n true 2>/dev/null; }
}
if [ "$state" = f ] && ! can_root; then
  say "role $ROLE logs in but is not a member of pg_signal_backend: a test database that an"
  say "autovacuum worker is still on cannot be dropped. To fix, run as root: bash $0"
  exit 0
fi

as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif can_root; then
    sudo "$@"
  else
    say "PostgreSQL is not ready and root is needed to set it up; run as root: bash $0"
    exit 1
  fi
}

if ! command -v pg_ctlcluster >/dev/null; then
  say "installing PostgreSQL from Debian's packages"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
if [ -z "$version" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
  as_root pg_createcluster "$version" main
fi
cluster_port=$(pg_conftool -s "$version" main show port 2>/dev/null || echo "$PORT")
if [ "$cluster_port" != "$PORT" ]; then
  say "cluster $version/main listens on port $cluster_port, the tests expect $PORT"
  exit 1
fi

if ! pg_isready -q -h 127.0.0.1 -p "$PORT"; then
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p "$PORT" && break; sleep 1; done
fi

as_root runuser -u postgres -- psql -q -p "$PORT" -v ON_ERROR_STOP=1 <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${ROLE}') THEN
    CREATE ROLE ${ROLE} LOGIN CREATEDB PASSWORD '${PASSWORD}';
  ELSE
    ALTER ROLE ${ROLE} LOGIN CREATEDB PASSWORD '${PASSWORD}';
  END IF;
END
\$\$;
GRANT pg_signal_backend TO ${ROLE};
SQL

if ! psql "$URL" -Atqc 'SELECT 1' >/dev/null; then
  say "PostgreSQL $version is running but $URL does not log in (check pg_hba.conf)"
  exit 1
fi
if [ "$(psql "$URL" -Atqc "$GRANTED")" != t ]; then
  say "role $ROLE is not a member of pg_signal_backend after the GRANT"
  exit 1
fi
say "PostgreSQL $version ready at 127.0.0.1:$PORT (role $ROLE)"
