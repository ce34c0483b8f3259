#!/usr/bin/env bash
# Runs the core under the Rust sanitizers that need nightly (docs/sanitizers.md):
#   tsan  ThreadSanitizer over the concurrency stress test (core/tests/stress.rs) and the
#         shared-connection tests (core/tests/shared.rs): the core, its dependencies and std
#         rebuilt with -Zsanitizer=thread (-Zbuild-std), in target/tsan;
#   miri  Miri over the core's pure unit tests: the ledger (packet ids, windows, replay), the
#         queue's settlement tracking and the fork gate.
# Not part of scripts/test.sh (a cold TSan build takes several minutes on 2 cores); the C ABI's
# ASan/UBSan and valgrind runs are in scripts/test-c.sh. Exits 1 on any report.
#   scripts/sanitize.sh [tsan|miri|all]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
export TMPDIR=/tmp   # Mosquitto drops root and must read the devagent's temp files
what=${1:-all}
case $what in tsan | miri | all) ;; *) echo "usage: $0 [tsan|miri|all]" >&2; exit 2 ;; esac

. scripts/lib.sh
scripts/setup.sh
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
rustup component add --toolchain nightly rust-src miri >/dev/null
host=$(rustc -vV | sed -n 's/^host: //p')

if [ "$what" != miri ]; then
  echo "== sanitize: ThreadSanitizer (stress, shared)"
  # halt_on_error: the first data race fails the run instead of scrolling past. std is rebuilt
  # with the sanitizer (-Zbuild-std), or its own synchronisation would look like races.
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
  RUSTFLAGS="-Zsanitizer=thread" RUSTDOCFLAGS="-Zsanitizer=thread" \
    CARGO_TARGET_DIR=target/tsan \
    cargo +nightly test -Zbuild-std --target "$host" --locked -p kepmlog \
    --test stress --test shared -- --nocapture
fi

if [ "$what" != tsan ]; then
  echo "== sanitize: Miri (ledger, queue, fork gate)"
  # Miri has no network and no clock worth trusting: only the pure unit tests, which touch
  # neither. -Zmiri-disable-isolation lets the fork gate's tests sleep on the host clock.
  MIRIFLAGS="-Zmiri-disable-isolation" CARGO_TARGET_DIR=target/miri \
    cargo +nightly miri test --locked -p kepmlog --lib -- ledger:: queue:: fork::
fi
echo "sanitize: $what clean"
