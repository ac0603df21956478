#!/usr/bin/env bash
# Issue 16's store figures, side by side in one run on SQLite and on a throw-away PostgreSQL
# cluster on loopback: lease acquire + release round trip (p50/p99) beside a bare `SELECT 1`,
# recording 6 builds x 20,000 samples, and 50 short runs by 8 writers (none lost or duplicated).
# The measurement is harness/store/benches/store.rs; the bench fills the cluster's own database.
set -euo pipefail
cd "$(dirname "$0")/.."
export GAUNTLET_TEST_PG_DIR="$(mktemp -d /tmp/gauntlet-pg-bench.XXXXXX)"
export GAUNTLET_TEST_PG_PORT="${GAUNTLET_TEST_PG_PORT:-55433}"
trap 'scripts/test-postgres.sh stop' EXIT
GAUNTLET_BENCH_PG_URL="$(scripts/test-postgres.sh start)"
export GAUNTLET_BENCH_PG_URL
# The store does not pull tract, so a package selection of its own rebuilds nothing heavy.
cargo bench --offline -p gauntlet-store --bench store
