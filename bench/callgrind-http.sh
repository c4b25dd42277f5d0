#!/usr/bin/env bash
# Instructions the server runs for HTTP updates: starts BIN (iotgo, release) under callgrind
# on a fresh SQLite data directory, runs BENCH (iotgo-bench) http-update against it for
# SECONDS, and prints "<total Ir> <updates committed>". Two runs of different lengths give
# Ir per update = ΔIr / Δupdates (bench/README.md). Needs valgrind and curl.
# usage: bench/callgrind-http.sh BIN BENCH SECONDS
set -e
bin=$1; bench=$2; dur=$3
d=$(mktemp -d); port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
IOTGO_ADMIN_EMAIL=admin@example.com IOTGO_ADMIN_PASSWORD=admin-password IOTGO_RATE_LIMITS=off IOTGO_METRICS=open RUST_LOG=warn \
  valgrind --tool=callgrind --callgrind-out-file=$d/cg.out "$bin" serve --listen 127.0.0.1:$port --data-dir $d/data >/dev/null 2>$d/vg.log &
pid=$!
for i in $(seq 1 200); do curl -fs http://127.0.0.1:$port/healthz >/dev/null 2>&1 && break; sleep 0.2; done
out=$("$bench" http-update --url http://127.0.0.1:$port --targets iotgo --duration $dur --no-report 2>&1)
req=$(curl -fs http://127.0.0.1:$port/metrics | awk '/^iotgo_updates_committed_total/ {print $2}')
kill -TERM $pid; wait $pid || true
ir=$(grep -m1 "^summary:\|^totals:" $d/cg.out | awk '{print $2}')
echo "$ir $req"
echo "$out" | tail -5 >&2
rm -rf $d
