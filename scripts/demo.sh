#!/usr/bin/env bash
# Runs a sample job the way the KEPM agent would and prints the operator's log view:
#   scripts/demo.sh [examples/jobs/<sample>.json]   (default: the Rust example)
# It installs the Rust example tool at target/agent-root/Jobs/bin/secret-scanner/ (the
# agent's layout) and calls `kepm-devagent run`: lint, HTTPS Plugin Settings + a TLS
# Mosquitto with the job's ACL, the tasks with the agent's arguments and environment, the
# log view live, a summary at the end. Other languages' tools are installed there by their
# scripts/test-<lang>.sh.
# Then it deploys and triggers the same job through the Jobs API, as a deployment script
# does: `kepm-devagent serve --jobs-api` in the background, `kepm-devagent deploy --trigger`
# with the Admin client certificate serve wrote, and serve's operator view of the run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build -q -p kepm-devagent -p kepmlog-cli -p secret-scanner
tdir=${CARGO_TARGET_DIR:-target}
root=target/agent-root
install -D -m 755 "$tdir/debug/secret-scanner" "$root/Jobs/bin/secret-scanner/secret-scanner"
job=${1:-examples/jobs/secret-scanner-rust.json}
TMPDIR=/tmp "$tdir/debug/kepm-devagent" run --agent-root "$root" "$job"

echo
echo "== Deploying $job through the Jobs API (kepm-devagent serve --jobs-api + deploy --trigger)"
api_root=target/agent-root-api
install -D -m 755 "$tdir/debug/secret-scanner" "$api_root/Jobs/bin/secret-scanner/secret-scanner"
rm -f "$api_root/Jobs/"*.json "$api_root/.lkg/"*.json
log=$(mktemp /tmp/kepm-demo-serve.XXXXXX)
TMPDIR=/tmp "$tdir/debug/kepm-devagent" serve --jobs-api --agent-root "$api_root" --ignore-stdin >"$log" &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do [ -s "$log" ] && break; sleep 0.1; done
ready() { python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).readline()); print(eval(sys.argv[2]))' "$log" "$1"; }
port=$(ready 'r["api_base"].rsplit(":",1)[1]')
"$tdir/debug/kepm-devagent" deploy "$job" --api "https://localhost:$port" \
  --ca-bundle "$(ready 'r["ca"]')" --cert "$(ready 'r["jobs_api"]["admin_cert"]')" \
  --key "$(ready 'r["jobs_api"]["admin_key"]')" --trigger
for _ in $(seq 600); do grep -q '"event":"run-finished"' "$log" && break; sleep 0.1; done
echo "== serve's operator view of the triggered run:"
python3 - "$log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("event") == "run":
        print(e["line"])
    elif e.get("event") == "jobs":
        print("JOBS", e["text"])
    elif e.get("event") == "run-finished":
        print("== run-finished: ok=%s, %d record(s)" % (e["ok"], len(e["messages"])))
PY
