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
