#!/usr/bin/env bash
# Job author tooling: the lint table, `kepm-devagent run` end to end, the `kepmlog` CLI; then
# lints and runs every examples/jobs/*.json whose tool is installed under target/agent-root
# (each language's test script installs its own; the Rust one is installed here), checking
# that its log records reach the broker. Jobs whose tool is not installed yet are skipped
# with a note.
set -euo pipefail
cd "$(dirname "$0")/.."
export TMPDIR=/tmp   # Mosquitto drops root and must read the devagent's temp files
scripts/setup.sh
tdir=${CARGO_TARGET_DIR:-target}
root=target/agent-root

# scripts/test.sh built these with the workspace and ran their tests (KEPMLOG_RUST_TESTED);
# on its own this script builds and tests them itself.
if [ "${KEPMLOG_RUST_TESTED:-}" != 1 ]; then
  cargo build -q --locked -p kepm-devagent -p kepmlog-cli -p secret-scanner
fi
install -D -m 755 "$tdir/debug/secret-scanner" "$root/Jobs/bin/secret-scanner/secret-scanner"
# `kepmlog run` and `kepmlog doctor` jobs: kepmlog is the task, resolved like any tool.
install -D -m 755 "$tdir/debug/kepmlog" "$root/Jobs/bin/kepmlog/kepmlog"

if [ "${KEPMLOG_RUST_TESTED:-}" != 1 ]; then
  echo "== jobs: cargo test (lint table, run, kepmlog CLI)"
  for pkg in "kepm-devagent --test lint --test run" "kepmlog-cli"; do
    # shellcheck disable=SC2086
    out=$(cargo test -q --locked -p $pkg 2>&1) || { echo "$out"; exit 1; }
    echo "$out" | grep -E "^test result"
  done
fi

echo "== jobs: lint and run every example job"
devagent="$tdir/debug/kepm-devagent"
export PATH="$PWD/$tdir/debug:$PATH"   # kepmlog, for scriptType examples
ran=0 skipped=0 failed=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# run_job NAME JOB WHY PATTERN...: `kepm-devagent run JOB`, its operator view shown; passes
# when it exits 0 and the view matches every (extended) PATTERN, else says WHY it failed.
# `run` registers each task 250 ms after its start by default, as a late runner on the agent
# would (the registration race): every language's tool must get through by retrying.
run_job() {
  local name=$1 job=$2 why=$3 p ok=1
  shift 3
  echo "-- $name: kepm-devagent run --agent-root $root $job"
  "$devagent" run --agent-root "$root" "$job" | tee "$work/run.txt" || ok=0
  for p in "$@"; do grep -qE -- "$p" "$work/run.txt" || ok=0; done
  if [ "$ok" -eq 1 ]; then
    ran=$((ran + 1))
  else
    echo "-- $name: run FAILED ($why)"
    failed=$((failed + 1))
  fi
}
for job in examples/jobs/*.json; do
  name=$(basename "$job" .json)
  if grep -q '"linux": false' "$job"; then
    "$devagent" lint --agent-root "$root" "$job" >"$work/lint.txt" \
      || { echo "-- $name: lint FAILED"; cat "$work/lint.txt"; failed=$((failed + 1)); continue; }
    echo "-- $name: linted (its osFilter excludes Linux: not run here)"
    continue
  fi
  case $name in doctor-*)
    # The doctor job's report: every check that could run passed, routing confirmed.
    run_job "$name" "$job" "a doctor check failed, or routing was not confirmed" \
      "routed back by the broker" "doctor: [0-9]+ passed, 0 failed"
    continue;;
  esac
  if ! "$devagent" lint --agent-root "$root" "$job" >"$work/lint.txt"; then
    errors=$(grep -c ': error\[' "$work/lint.txt" || true)
    missing=$(grep -c ': error\[task-binary\]' "$work/lint.txt" || true)
    if [ "$errors" -eq "$missing" ] && [ "$name" != secret-scanner-rust ]; then
      echo "-- $name: skipped (its tool is not installed under $root yet; its language's test script installs it)"
      skipped=$((skipped + 1))
      continue
    fi
    echo "-- $name: lint FAILED"
    cat "$work/lint.txt"
    failed=$((failed + 1))
    continue
  fi
  # Every example tool is the same secret scanner: its last record says "Scan complete" and
  # it sends a started and a done event. The operator's view shows what the broker received.
  run_job "$name" "$job" "non-zero exit, or the summary record or the two events not received" \
    "messages: [1-9][0-9]* on KeeperLogger" "\[SecretsScan\] Scan complete" \
    "messages: .*, ([2-9]|[1-9][0-9]+) event\(s\)"
done
echo "jobs: $ran example job(s) run OK, $skipped skipped (tool not installed), $failed failed"
if [ -n "${CI:-}" ] && [ "$skipped" -gt 0 ]; then
  # scripts/test.sh runs this after every binding's suite has installed its tool: in CI a
  # skipped job means an install step is missing, not that a tool is still being written.
  echo "jobs: $skipped example job(s) skipped under CI: every example tool must be installed"
  exit 1
fi
[ "$failed" -eq 0 ] && [ "$ran" -ge 1 ]
