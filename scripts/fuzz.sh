#!/usr/bin/env bash
# Fuzzes kepmlog with cargo-fuzz (libFuzzer) for SECONDS_PER_TARGET seconds per target
# (default 20): builds every target in fuzz/ with nightly, runs each on its checked-in seed
# corpus (fuzz/corpus/TARGET, read only: new inputs go to a scratch directory), and fails when
# any target crashes, panics, leaks past its memory limit or hangs, printing the reproducer.
# With --dev, a debug build (debug assertions and overflow checks, dependencies unoptimised): a
# cold build in ~2 min instead of ~12 (release), ~10x fewer executions a second; what
# scripts/test-fuzz.sh runs in CI. docs/fuzzing.md has the targets and the timings.
#   scripts/fuzz.sh [--dev] [SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")/.."
dev=()
if [ "${1:-}" = --dev ]; then dev=(--dev); shift; fi
seconds=${1:-20}
case $seconds in '' | *[!0-9]*) echo "usage: $0 [--dev] [SECONDS_PER_TARGET]" >&2; exit 2 ;; esac

CARGO_FUZZ_VERSION=0.13.2
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version 2>/dev/null | grep -qx "cargo-fuzz $CARGO_FUZZ_VERSION"; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# The targets build without the agent's environment; the c_strings target must not pick up a
# job id or a fallback from the shell.
unset KEEPER_JOB_ID KEPMLOG_FALLBACK

cd fuzz
echo "== fuzz: build (nightly, AddressSanitizer${dev:+, dev profile})"
cargo +nightly fuzz build "${dev[@]}"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
for target in $(cargo +nightly fuzz list); do
  # Per target: the largest input and the memory ceiling. mqtt_incoming's inputs reach past
  # the session's 64 KiB packet limit; its ceiling is the "bounded memory" invariant.
  case $target in
    mqtt_incoming) max_len=131072 rss=512 ;;
    *) max_len=16384 rss=1024 ;;
  esac
  echo "== fuzz: $target (${seconds}s)"
  mkdir -p "$scratch/$target"
  log=$scratch/$target.log
  if cargo +nightly fuzz run "${dev[@]}" "$target" "$scratch/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len="$max_len" -rss_limit_mb="$rss" -timeout=10 \
    -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^Done [0-9]+ runs' "$log" || true
  else
    failed+=("$target")
    tail -n 40 "$log"
    reproducer=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    echo "fuzz: $target FAILED; reproducer: ${reproducer:-none written (see the log above)}"
    [ -z "$reproducer" ] || echo "  rerun: (cd fuzz && cargo +nightly fuzz run ${dev[*]} $target $reproducer)"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failures in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all targets clean (${seconds}s each)"
