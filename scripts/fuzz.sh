#!/usr/bin/env bash
# Fuzz the scenario parser + validator, criteria and templates (cargo-fuzz, nightly).
#
#   bash scripts/fuzz.sh [minutes]     # default 5; runs at nice 19
#
# The seed corpus is copied from scenarios/*.toml and tests/fixtures/**/*.toml into
# fuzz/corpus/scenario (not committed). A crash is saved under fuzz/artifacts/scenario/;
# keep it as a regression test: copy it to tests/fixtures/fuzz_regressions/NAME.toml
# (tests/fuzz_regressions.rs checks that each one fails validation cleanly).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-5}"
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: no nightly toolchain (rustup toolchain install nightly); skipped" >&2
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz from crates.io" >&2
    nice -n 19 cargo +nightly install cargo-fuzz --locked
fi
corpus=fuzz/corpus/scenario
mkdir -p "$corpus"
for f in scenarios/*.toml $(find tests/fixtures -name '*.toml'); do
    cp "$f" "$corpus/seed-$(echo "$f" | tr '/' '_')"
done
secs=$((minutes * 60))
# Release build with debug assertions (overflow checks on); -max_len fits real files.
nice -n 19 cargo +nightly fuzz run --fuzz-dir fuzz --target-dir target/fuzz -O -a \
    scenario "$corpus" -- \
    -max_total_time="$secs" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
    -dict=fuzz/scenario.dict -print_final_stats=1
