#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer on 127.0.0.1 for the test suite: uses running ones,
# otherwise starts the installed servers, otherwise installs them from Debian's packages.
set -euo pipefail

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
wait_for() {
  for _ in $(seq 1 30); do listening "$1" && return 0; sleep 1; done
  echo "nothing answers on port $1" >&2; return 1
}

if ! listening 5432; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "installing PostgreSQL from Debian's packages..."
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
    # The server installed here is for tests: it trusts loopback, as the suite connects as postgres.
    hba=$(ls /etc/postgresql/*/main/pg_hba.conf | sort -V | tail -n 1)
    as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_for 5432
fi

if ! listening 6379; then
  if ! command -v redis-server >/dev/null; then
    echo "installing Redis from Debian's packages..."
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
  fi
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/rankwell-test.log
  wait_for 6379
fi
echo "PostgreSQL and Redis are up."
