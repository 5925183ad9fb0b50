#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer for the test suite: uses running ones, otherwise starts
# the installed servers, otherwise installs them from Debian's packages. TEST_DATABASE_URL and
# TEST_REDIS_URL (the Makefile's) may name other hosts, as CI's service containers are: those
# are only waited for.
set -euo pipefail

host_port() { local rest=${1#*://}; rest=${rest#*@}; rest=${rest%%/*}; echo "${rest%:*} ${rest##*:}"; }
read -r pg_host pg_port <<<"$(host_port "${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/rankwell}")"
read -r redis_host redis_port <<<"$(host_port "${TEST_REDIS_URL:-redis://127.0.0.1:6379/0}")"

listening() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
local_host() { [ "$1" = 127.0.0.1 ] || [ "$1" = localhost ]; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
wait_for() {
  for _ in $(seq 1 30); do listening "$1" "$2" && return 0; sleep 1; done
  echo "nothing answers on $1:$2" >&2; return 1
}

if ! local_host "$pg_host"; then
  wait_for "$pg_host" "$pg_port"
elif ! listening 127.0.0.1 5432; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "installing PostgreSQL from Debian's packages..."
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
    # The server installed here is for tests: it trusts loopback, as the suite connects as postgres.
    hba=$(ls /etc/postgresql/*/main/pg_hba.conf | sort -V | tail -n 1)
    as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_for 127.0.0.1 5432
fi

if ! local_host "$redis_host"; then
  wait_for "$redis_host" "$redis_port"
elif ! listening 127.0.0.1 6379; then
  if ! command -v redis-server >/dev/null; then
    echo "installing Redis from Debian's packages..."
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
  fi
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/rankwell-test.log
  wait_for 127.0.0.1 6379
fi
echo "PostgreSQL and Redis are up."

# The signal store is also tested on a local three-node Redis Cluster, started from the
# redis-server and redis-cli binaries (needed even when the suite's Redis is a remote service).
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  echo "installing redis-server and redis-cli from Debian's packages..."
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
fi

# The browser tests (tests/e2e) drive Debian's chromium through Playwright; Playwright never
# downloads a browser of its own.
if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium from Debian's packages..."
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi
echo "chromium is at /usr/bin/chromium."

# promtool (Debian's prometheus package) checks and unit-tests platform/prometheus/alerts.yml.
# Only the tool is wanted: the package's own server is never started.
if ! command -v promtool >/dev/null; then
  echo "installing promtool from Debian's prometheus package..."
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
echo "promtool is at $(command -v promtool)."

# amtool and the Alertmanager server (Debian's prometheus-alertmanager package) check and test
# the routing of platform/alertmanager/alertmanager.yml; the tests start their own Alertmanager
# on a free port, never the package's service.
if ! command -v amtool >/dev/null || ! command -v prometheus-alertmanager >/dev/null; then
  echo "installing amtool from Debian's prometheus-alertmanager package..."
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null
fi
echo "amtool is at $(command -v amtool)."
