#!/usr/bin/env bash
# Smoke run of every benchmark scenario: builds the server and the harness, runs each
# scenario for a few seconds with small numbers against iotgo and the in-memory reference
# (no Mosquitto needed) and fails on any error or lost push. For CI; full runs are in
# bench/README.md.
#
#   bench/smoke.sh            # debug build
#   PROFILE=release bench/smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${PROFILE:-debug}"
flag=()
[ "$profile" = release ] && flag=(--release)
cargo build "${flag[@]}" -p iotgo-server -p iotgo-bench
bench="target/$profile/iotgo-bench"
common=(--iotgo "target/$profile/iotgo" --targets ref,iotgo --duration 2 --no-report --strict)
"$bench" ws-fanout "${common[@]}" --devices 20 --apps 2 --inflight 4
# The same shape over iotgo's own MQTT listener (started on a free port).
"$bench" ws-fanout --iotgo "target/$profile/iotgo" --targets iotgo-mqtt --duration 2 --no-report \
  --strict --devices 20 --apps 2 --inflight 4
"$bench" http-update "${common[@]}" --conns 8
"$bench" idle "${common[@]}" --conns 200
# Two nodes on PostgreSQL and a nats-server of their own (devices on one, apps on the
# other), after one node on the same fresh database; skipped without them.
if [ -n "${IOTGO_TEST_DATABASE_URL:-}" ] && command -v nats-server >/dev/null \
  && command -v psql >/dev/null; then
  db="iotgo_bench_smoke_$$"
  psql -q "$IOTGO_TEST_DATABASE_URL" -c "CREATE DATABASE $db"
  trap 'psql -q "$IOTGO_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
  "$bench" ws-fanout --iotgo "target/$profile/iotgo" --targets iotgo --duration 2 \
    --no-report --strict --no-half --devices 20 --apps 2 --inflight 4 --nodes 2 \
    --database-url "${IOTGO_TEST_DATABASE_URL%/*}/$db"
else
  echo "bench smoke: ws-fanout --nodes 2 skipped (needs IOTGO_TEST_DATABASE_URL, nats-server, psql)"
fi
echo "bench smoke: ok"
