#!/usr/bin/env bash
# The main job (README's first command): set-up, build, and run the quickstart scenario
# end to end against the built-in demo API. The report lands in reports/<run-id>/ and
# reports/latest points at it. Exit code is gauntlet's (0 = every criterion passed).
set -euo pipefail
cd "$(dirname "$0")/.."
GAUNTLET_SKIP_DOCKER=1 bash scripts/setup.sh
cargo build --release --locked
exec target/release/gauntlet run "${1:-scenarios/quickstart.toml}"
