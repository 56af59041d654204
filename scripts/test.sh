#!/usr/bin/env bash
# The test command (README's second command; .ci/run calls it): set-up, then format,
# lint, and every test. Fails when any of them fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Without the demo (default feature `demo` off) the harness must still compile.
cargo check --no-default-features --all-targets --locked
cargo test --workspace --locked --no-fail-fast 2>&1 | tee target/test-output.log
# A short fuzz pass over parse + validate (2 minutes, plus the first build) when a nightly
# toolchain is there; scripts/fuzz.sh installs cargo-fuzz from crates.io if missing.
if cargo +nightly --version >/dev/null 2>&1; then
    bash scripts/fuzz.sh 2
else
    echo "note: no nightly toolchain, so the fuzz pass is skipped (rustup toolchain install nightly)" >&2
fi
