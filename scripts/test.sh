#!/usr/bin/env bash
# Installs everything the tests need and runs them: Python packages, Debian's Chromium and
# PostgreSQL (when apt is available and we are root), a throw-away PostgreSQL server on
# localhost for the store tests, then ruff and pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 PYTHONUNBUFFERED=1

python -m pip install -q --disable-pip-version-check -r requirements-dev.txt

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${need_apt[*]} from Debian"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "note: ${need_apt[*]} missing and cannot be installed here; those tests will skip"
  fi
fi

# A private PostgreSQL server for this run, unless the caller already points at one.
pg_dir=""
cleanup() {
  if [ -n "$pg_dir" ]; then
    $as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
}
trap cleanup EXIT
if [ -z "${TEST_DATABASE_URL:-}" ] && pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1) && [ -n "$pg_bin" ]; then
  pg_dir=$(mktemp -d /tmp/gs-pg.XXXXXX)
  as_pg=""
  if [ "$(id -u)" = 0 ]; then chown postgres "$pg_dir"; as_pg="runuser -u postgres --"; fi
  pg_port=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  $as_pg "$pg_bin/initdb" -D "$pg_dir/data" -A trust -U postgres -E UTF8 >/dev/null
  $as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
    -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  $as_pg "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres guidance_test
  export TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$pg_port/guidance_test"
  echo "PostgreSQL for the store tests: $TEST_DATABASE_URL"
fi

python -m ruff check .
python -m pytest "$@"
