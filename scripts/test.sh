#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs, checks formatting and lints,
# builds, runs the Rust tests against real Mosquitto brokers, then every binding's suite
# (scripts/test-*.sh, each installing its own toolchain packages).
set -euo pipefail
cd "$(dirname "$0")/.."
export TMPDIR=/tmp   # Mosquitto drops root and must read the devagent's temp files
# Each step's start with the time so far: what the 45-minute CI budget is spent on.
started=$SECONDS
# ...and the free disk: a full run leaves about 8 GB of build output (target/, fuzz/target/),
# and a disk that fills mid-run fails far from the cause.
free_gb() { df -Pk . | awk 'NR == 2 { printf "%d", $4 / 1048576 }'; }
step() { echo "== $1 (at $((SECONDS - started)) s, $(free_gb) GB free)"; }
if [ "$(free_gb)" -lt 10 ]; then
  echo "test: warning: only $(free_gb) GB free on $(df -P . | awk 'NR == 2 { print $6 }'); the suite" \
       "writes about 8 GB of builds and may fail with 'No space left on device': free some space" \
       "first (old target/ directories: cargo clean)" >&2
fi
# A clean clone gains nothing from incremental compilation state: it only costs disk (about
# 1 GB here) and time. A developer's own setting is kept.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
scripts/setup.sh

step "imports: no two modules import each other"
python3 scripts/check-imports.py

step "rust: fmt, clippy"
cargo fmt --all -- --check
# The core's bridges (features log, tracing) are linted, built and tested with the whole
# workspace: `-p kepmlog --features ...` would resolve the dependencies' features anew and
# build them a second time. Without the features, everything compiles in the first clippy run
# and in the bindings' release builds below.
bridges=kepmlog/log,kepmlog/tracing
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --workspace --all-targets --features "$bridges" --locked -- -D warnings

step "rust: tests"
# The binaries first (the example tool, the CLI, the devagent): tests run them. Same features
# as the tests, so the two share every artifact.
cargo build --workspace --features "$bridges" --locked
cargo test --workspace --features "$bridges" --locked
# The suites below use the devagent and binaries this built; test-jobs.sh need not test the
# devagent's lint and run tables and the CLI again.
export KEPM_DEVAGENT=${CARGO_TARGET_DIR:-$PWD/target}/debug/kepm-devagent
export KEPMLOG_RUST_TESTED=1

# Each binding's suite installs its example tool under target/agent-root; test-jobs.sh runs
# every example job through `kepm-devagent run`, so it goes last.
for suite in scripts/test-*.sh; do
  [ -e "$suite" ] || continue
  [ "$suite" = scripts/test-jobs.sh ] && continue
  step "$(basename "$suite" .sh)"
  bash "$suite"
done
if [ -e scripts/test-jobs.sh ]; then
  step "test-jobs"
  bash scripts/test-jobs.sh
fi
step "all suites passed"
