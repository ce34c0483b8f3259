#!/usr/bin/env bash
# Runs a sample job the way the KEPM agent would and prints the operator's log view:
#   scripts/demo.sh [examples/jobs/<sample>.json]   (default: the Rust example)
# It installs the Rust example tool at target/agent-root/Jobs/bin/secret-scanner/ (the
# agent's layout) and calls `kepm-devagent run`: lint, HTTPS Plugin Settings + a TLS
# Mosquitto with the job's ACL, the tasks with the agent's arguments and environment, the
# log view live, a summary at the end. Other languages' tools are installed there by their
# scripts/test-<lang>.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build -q -p kepm-devagent -p kepmlog-cli -p secret-scanner
tdir=${CARGO_TARGET_DIR:-target}
root=target/agent-root
install -D -m 755 "$tdir/debug/secret-scanner" "$root/Jobs/bin/secret-scanner/secret-scanner"
job=${1:-examples/jobs/secret-scanner-rust.json}
TMPDIR=/tmp exec "$tdir/debug/kepm-devagent" run --agent-root "$root" "$job"
