#!/usr/bin/env bash
# Interrupt soak: N runs (default 100) of a short fault scenario, each ended at a seeded
# random moment by SIGINT, SIGTERM, SIGHUP, a double SIGINT or SIGKILL; after each, no
# process of the run may be left or stopped (after `gauntlet cleanup` for the last two).
# Writes the counts to reports/soak/<date>.md. GAUNTLET_SOAK_SEED changes the moments.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100}"
case "$N" in
  ''|*[!0-9]*) echo "usage: scripts/soak.sh [N]  (N: number of runs, default 100)" >&2; exit 2 ;;
esac
GAUNTLET_SOAK_RUNS="$N" cargo test --locked --test soak -- --ignored --exact soak_full --nocapture
