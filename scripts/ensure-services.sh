#!/usr/bin/env bash
# Makes sure the local PostgreSQL and Redis that the test suites use are up,
# starting them when they have stopped. Exits non-zero when either stays down.
set -euo pipefail

pg_host="${PGHOST_FOR_TESTS:-127.0.0.1}"
pg_port="${PGPORT_FOR_TESTS:-5432}"
redis_port="${REDIS_PORT_FOR_TESTS:-6379}"

wait_for() {
  local what="$1"; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "ensure-services: $what did not come up" >&2
  return 1
}

if ! pg_isready -h "$pg_host" -p "$pg_port" -q; then
  echo "ensure-services: starting PostgreSQL"
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
fi
wait_for "PostgreSQL on $pg_host:$pg_port" pg_isready -h "$pg_host" -p "$pg_port" -q

if ! redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null | grep -q PONG; then
  echo "ensure-services: starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no
fi
wait_for "Redis on 127.0.0.1:$redis_port" bash -c "redis-cli -h 127.0.0.1 -p $redis_port ping | grep -q PONG"
echo "ensure-services: PostgreSQL and Redis are up"
