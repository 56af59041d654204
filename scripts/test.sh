#!/usr/bin/env bash
# The test command (README's second command; .ci/run calls it): set-up, then format,
# lint, and every test. Fails when any of them fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked --no-fail-fast 2>&1 | tee target/test-output.log
