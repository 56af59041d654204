#!/usr/bin/env bash
# Side-by-side benchmark of load generators (see BENCHMARKS.md): one target server pinned
# to one core, each generator pinned to the other, the same endpoint and duration; the
# requests are counted by the server over the measured window (after a warm-up). The
# generators alternate within each round (the order rotates every round, to cancel
# drift); medians and spread over the rounds. Then an open-model gauntlet run at a fixed
# arrival rate against the server's 20 ms endpoint. Writes reports/bench/<date>.md and
# prints it.
#
#   scripts/bench.sh                                     # the full matrix (~25 min)
#   SECS=2 WARMUP=1 RUNS=1 CONNS=100 scripts/bench.sh    # a smoke run (labelled as such)
#
# Knobs: SECS (measured window, 15), WARMUP (seconds before it, 5), RUNS (rounds, 3),
# CONNS ("100 5000"), GENERATORS ("wrk oha goose gauntlet"), OPEN_RATE (arrivals/s of
# the open-model run, 200; OPEN_RATE=0 skips it), SERVER_CPU (1), LOAD_CPU (0),
# OUT (the report file), SMOKE (1 labels the report a smoke run; default: when SECS < 15
# or RUNS < 3), BUILD (0: no cargo build; GAUNTLET_BIN, SERVER_BIN, GOOSE_BIN name the
# binaries, default target/release/). Installs what is missing: wrk and time (apt-get), oha (cargo install
# oha --locked), the release builds of gauntlet, bench/goose-stock and bench/server.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SECS=${SECS:-15}
WARMUP=${WARMUP:-5}
RUNS=${RUNS:-3}
CONNS=${CONNS:-"100 5000"}
GENERATORS=${GENERATORS:-"wrk oha goose gauntlet"}
OPEN_RATE=${OPEN_RATE:-200}
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
TAIL=2 # seconds the generators run past the window, so none stops inside it
if [ -z "${SMOKE:-}" ]; then
  if [ "$SECS" -lt 15 ] || [ "$RUNS" -lt 3 ]; then SMOKE=1; else SMOKE=0; fi
fi
DATE=$(date -u +%Y-%m-%d)
if [ "$SMOKE" = 1 ]; then OUT=${OUT:-reports/bench/$DATE-smoke.md}; else OUT=${OUT:-reports/bench/$DATE.md}; fi

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --- what is missing --------------------------------------------------------------------
need_apt() { # need_apt COMMAND PACKAGE
  command -v "$1" >/dev/null && return 0
  echo "installing $2 (apt-get)..." >&2
  apt-get install -y "$2" >/dev/null || { apt-get update >/dev/null && apt-get install -y "$2" >/dev/null; }
}
for g in $GENERATORS; do
  case $g in
    wrk) need_apt wrk wrk ;;
    oha) command -v oha >/dev/null || { echo "installing oha (cargo install oha --locked)..." >&2; cargo install oha --locked; } ;;
    goose | gauntlet) ;;
    *) echo "unknown generator: $g (wrk oha goose gauntlet)" >&2; exit 2 ;;
  esac
done
[ -x /usr/bin/time ] || need_apt /usr/bin/time time
command -v python3 >/dev/null || { echo "python3 is needed (scripts/bench-report.py)" >&2; exit 1; }
command -v curl >/dev/null || need_apt curl curl

if [ "${BUILD:-1}" = 1 ]; then
  echo "building (release)..." >&2
  cargo build --release --bin gauntlet >&2
  (cd bench/server && CARGO_TARGET_DIR="$ROOT/target" cargo build --release >&2)
  case " $GENERATORS " in *" goose "*) (cd bench/goose-stock && CARGO_TARGET_DIR="$ROOT/target" cargo build --release >&2) ;; esac
fi
GAUNTLET=${GAUNTLET_BIN:-$ROOT/target/release/gauntlet}
SERVER=${SERVER_BIN:-$ROOT/target/release/bench-server}
GOOSE=${GOOSE_BIN:-$ROOT/target/release/goose-stock}
for b in "$SERVER" $(case " $GENERATORS " in *" gauntlet "*) echo "$GAUNTLET" ;; esac) $(case " $GENERATORS " in *" goose "*) echo "$GOOSE" ;; esac); do
  [ -x "$b" ] || { echo "missing: $b (run without BUILD=0)" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gauntlet-bench.XXXXXX")
RESULTS=$WORK/results.jsonl
: >"$RESULTS"

# Pinning as a command prefix (not a shell function), so that `$!` of a background job is
# the pinned process itself (taskset execs it) and can be stopped.
SPIN=() LPIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -gt 1 ]; then
  SPIN=(taskset -c "$SERVER_CPU") LPIN=(taskset -c "$LOAD_CPU")
fi

# Each run gets its own server and port: no TIME_WAIT left by the previous run on the
# same address pair.
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
SERVER_PID=
start_server() {
  PORT=$((PORT + 1))
  "${SPIN[@]}" "$SERVER" "$PORT" 2>"$WORK/server.log" &
  SERVER_PID=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$PORT/__count" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the bench server did not start on port $PORT" >&2; exit 1
}
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}
GEN_PID=
cleanup() {
  [ -n "$GEN_PID" ] && kill "$GEN_PID" 2>/dev/null || true
  stop_server
}
trap cleanup EXIT
trap 'exit 130' INT TERM

count() { curl -fs "http://127.0.0.1:$PORT/__count"; }
now() { date +%s.%N; }

gauntlet_scenario() { # gauntlet_scenario FILE USERS DURATION
  cat >"$1" <<EOF
name = "bench-closed"
description = "scripts/bench.sh: closed model, $2 users, no think time, one GET"

[target]
base_url = "http://127.0.0.1:$PORT"
allow_hosts = ["127.0.0.1"]

[load]
model = "closed"
stages = [
  { duration = "0s", users = $2 },
  { duration = "${3}s", users = $2 },
]

[[requests]]
name = "get"
path = "/"
EOF
}

# run_one GENERATOR CONNS ROUND: one generator against a fresh server; appends one JSON
# line to $RESULTS.
run_one() {
  local gen=$1 n=$2 round=$3
  local dir=$WORK/$gen-$n-$round
  local dur=$((WARMUP + SECS + TAIL))
  mkdir -p "$dir"
  start_server
  local url="http://127.0.0.1:$PORT"
  local timed=(/usr/bin/time -v -o "$dir/time.txt")
  now >"$dir/start"
  case $gen in
    wrk)
      "${LPIN[@]}" "${timed[@]}" wrk -t1 -c"$n" -d"${dur}s" --timeout 10s --latency "$url/" >"$dir/out.txt" 2>&1 &
      ;;
    oha)
      "${LPIN[@]}" "${timed[@]}" oha -z "${dur}s" -c "$n" --no-tui --output-format json -o "$dir/oha.json" "$url/" >"$dir/out.txt" 2>&1 &
      ;;
    goose)
      # Timestamped stdout: goose says "All N users launched" there.
      "${LPIN[@]}" "${timed[@]}" "$GOOSE" -H "$url" -u "$n" -r "$n" -t "${dur}s" --report-file "$dir/goose.json" 2>"$dir/err.txt" |
        while IFS= read -r line; do printf '%s %s\n' "$(now)" "$line"; done >"$dir/out.txt" &
      ;;
    gauntlet)
      gauntlet_scenario "$dir/scenario.toml" "$n" "$dur"
      RUST_LOG="gauntlet=info,gauntlet::event=debug" "${LPIN[@]}" "${timed[@]}" "$GAUNTLET" run "$dir/scenario.toml" -q --reports "$dir" --run-id run >"$dir/out.txt" 2>"$dir/err.txt" &
      ;;
  esac
  GEN_PID=$!
  sleep "$WARMUP"
  local c0 t0 c1 t1
  c0=$(count); t0=$(now)
  sleep "$SECS"
  c1=$(count); t1=$(now)
  wait "$GEN_PID" || echo "note: $gen exited with status $? (see $dir)" >&2
  GEN_PID=
  stop_server
  python3 scripts/bench-report.py record --gen "$gen" --conns "$n" --round "$round" \
    --count0 "$c0" --t0 "$t0" --count1 "$c1" --t1 "$t1" --dir "$dir" >>"$RESULTS"
  tail -1 "$RESULTS" >&2
}

gens=($GENERATORS)
for round in $(seq "$RUNS"); do
  for n in $CONNS; do
    # Rotate the order every round so that no generator always runs first or last.
    for i in $(seq 0 $((${#gens[@]} - 1))); do
      g=${gens[$(((i + round - 1) % ${#gens[@]}))]}
      echo "== round $round/$RUNS, $n connections: $g" >&2
      run_one "$g" "$n" "$round"
    done
  done
done

# The open-model run: a fixed arrival rate below saturation against the 20 ms endpoint.
OPEN_JSON=
if [ "$OPEN_RATE" != 0 ]; then
  echo "== open model: $OPEN_RATE/s against /sleep20" >&2
  dir=$WORK/open
  mkdir -p "$dir"
  start_server
  cat >"$dir/scenario.toml" <<EOF
name = "bench-open"
description = "scripts/bench.sh: open model, $OPEN_RATE/s, the 20 ms endpoint"

[target]
base_url = "http://127.0.0.1:$PORT"
allow_hosts = ["127.0.0.1"]

[load]
model = "open"
max_in_flight = 5000
stages = [
  { duration = "0s", rate = $OPEN_RATE },
  { duration = "$((WARMUP + SECS))s", rate = $OPEN_RATE },
]

[[requests]]
name = "sleep 20ms"
path = "/sleep20"
EOF
  "${LPIN[@]}" /usr/bin/time -v -o "$dir/time.txt" "$GAUNTLET" run "$dir/scenario.toml" -q --reports "$dir" --run-id run >"$dir/out.txt" 2>"$dir/err.txt" ||
    echo "note: the open-model run exited with status $? (see $dir)" >&2
  stop_server
  OPEN_JSON=$dir/open.json
  python3 scripts/bench-report.py open --rate "$OPEN_RATE" --dir "$dir" >"$OPEN_JSON"
fi

mkdir -p "$(dirname "$OUT")"
python3 scripts/bench-report.py render --results "$RESULTS" ${OPEN_JSON:+--open "$OPEN_JSON"} \
  --secs "$SECS" --warmup "$WARMUP" --runs "$RUNS" --conns "$CONNS" --generators "$GENERATORS" \
  --server-cpu "$SERVER_CPU" --load-cpu "$LOAD_CPU" --smoke "$SMOKE" >"$OUT"
cat "$OUT"
echo "written: $OUT (raw outputs in $WORK)" >&2
