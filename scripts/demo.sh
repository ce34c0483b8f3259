#!/usr/bin/env bash
# Runs the sample job tool (examples/rust, job examples/jobs/secret-scanner-rust.json) the way
# the KEPM agent would, against a local devagent (HTTPS Plugin Settings + TLS Mosquitto), and
# prints the operator's log view: every KeeperLogger record and event the broker received.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build -q -p kepm-devagent -p secret-scanner
work=$(mktemp -d)
trap 'exec 3>&- 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
mkfifo "$work/in"
TMPDIR=/tmp target/debug/kepm-devagent serve --pretty \
  --allow KeeperLogger --allow Jobs/secret-scanner-rust/events <"$work/in" >"$work/view" &
exec 3>"$work/in"
for _ in $(seq 1 100); do grep -q "ready:" "$work/view" 2>/dev/null && break; sleep 0.1; done
api_base=$(sed -n 's/.*Plugin Settings at \(https:\/\/[^/]*\)\/api.*/\1/p' "$work/view" | head -n 1)
[ -n "$api_base" ] || { echo "demo: the devagent did not start" >&2; cat "$work/view" >&2; exit 1; }
echo "== job secret-scanner-rust: secret-scanner --keeper-api-base=$api_base examples"
set +e
KEEPER_JOB_ID=secret-scanner-rust KEEPER_JOB_NAME="Secret scanner (Rust)" \
  target/debug/secret-scanner "--keeper-api-base=$api_base" examples
code=$?
set -e
echo "== task exit code: $code"
sleep 0.5
echo quit >&3
exec 3>&-
wait
echo "== operator's log view"
grep -v -e '^kepm-devagent ready' -e '^Run a job tool' -e '^  export' -e '^  your-tool' -e '"event":"ok"' "$work/view"
