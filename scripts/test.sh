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
# The generated-input pass over parse + validate runs above on stable (tests/scenario_bounds.rs,
# proptest: random bytes and extreme numbers, under a minute). The coverage-guided
# cargo-fuzz pass (nightly) is opt-in, because its first build alone is several minutes on
# two cores: GAUNTLET_FUZZ_MINUTES=2 bash scripts/test.sh (scripts/fuzz.sh installs
# cargo-fuzz from crates.io if missing).
if [ -n "${GAUNTLET_FUZZ_MINUTES:-}" ]; then
    bash scripts/fuzz.sh "$GAUNTLET_FUZZ_MINUTES"
fi
