#!/usr/bin/env bash
# Benchmark of the load engine: a lean hyper server pinned to one core, the generator
# pinned to the other, N users (default 5000) each with its own keep-alive connection.
# Prints req/s, peak RSS and the time until every user runs, for the engine (goose users
# + our hyper client + events + recorder) and for a bare hyper loop (the reference).
#
#   scripts/bench-load.sh                    # 5000 users, 10 s
#   USERS=1000 SECS=20 scripts/bench-load.sh
#   THINK=100ms scripts/bench-load.sh        # with think time
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${USERS:-5000}
SECS=${SECS:-10}
THINK=${THINK:-0s}
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18999)}
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "building (release)..." >&2
BIN=$(cargo test --release --test load_bench --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
[ -x "$BIN" ] || { echo "could not build the benchmark" >&2; exit 1; }

pin() { # pin CPU COMMAND...
  local cpu=$1; shift
  if command -v taskset >/dev/null && [ "$(nproc)" -gt 1 ]; then taskset -c "$cpu" "$@"; else "$@"; fi
}

run_server() {
  BENCH_PORT=$PORT BENCH_SERVE_SECS=$((SECS + 60)) pin "$SERVER_CPU" "$BIN" --ignored --exact bench_server --nocapture >/dev/null 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "server did not start" >&2; exit 1
}
stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}
trap stop_server EXIT

export BENCH_URL="http://127.0.0.1:$PORT" BENCH_USERS=$USERS BENCH_SECS=$SECS BENCH_THINK=$THINK

echo "== engine: $USERS users, think $THINK, ${SECS}s (server on cpu $SERVER_CPU, generator on cpu $LOAD_CPU)"
run_server
pin "$LOAD_CPU" "$BIN" --ignored --exact bench_engine --nocapture --test-threads 1 2>&1 | grep -oE 'engine: .*'
stop_server

echo "== reference: bare hyper loop, $USERS connections, ${SECS}s"
run_server
pin "$LOAD_CPU" "$BIN" --ignored --exact bench_bare --nocapture --test-threads 1 2>&1 | grep -oE 'bare: .*'
stop_server
trap - EXIT
