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
"$bench" http-update "${common[@]}" --conns 8
"$bench" idle "${common[@]}" --conns 200
echo "bench smoke: ok"
