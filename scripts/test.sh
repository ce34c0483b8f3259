#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs, checks formatting and lints,
# builds, runs the Rust tests against real Mosquitto brokers, then every binding's suite
# (scripts/test-*.sh, each installing its own toolchain packages).
set -euo pipefail
cd "$(dirname "$0")/.."
export TMPDIR=/tmp   # Mosquitto drops root and must read the devagent's temp files
scripts/setup.sh

echo "== imports: no two modules import each other"
python3 scripts/check-imports.py

echo "== rust: fmt, clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p kepmlog --all-targets --features log,tracing --locked -- -D warnings

echo "== rust: tests"
cargo build --workspace --locked
cargo test --workspace --locked
cargo test -p kepmlog --features log,tracing --lib --locked
cargo test -p kepmlog --features tracing --test tracing --locked

# Each binding's suite installs its example tool under target/agent-root; test-jobs.sh runs
# every example job through `kepm-devagent run`, so it goes last.
for suite in scripts/test-*.sh; do
  [ -e "$suite" ] || continue
  [ "$suite" = scripts/test-jobs.sh ] && continue
  echo "== $(basename "$suite" .sh)"
  bash "$suite"
done
if [ -e scripts/test-jobs.sh ]; then
  echo "== test-jobs"
  bash scripts/test-jobs.sh
fi
echo "== all suites passed"
