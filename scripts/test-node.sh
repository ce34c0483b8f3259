#!/usr/bin/env bash
# Node binding suite: installs the package the way a user does (`npm install ./bindings/node`
# into a scratch consumer under target/), installs the example job tool into the agent root,
# then runs the node:test suite against kepm-devagent (real Mosquitto over TLS).
#
# KEPMLOG_CARGO_PROFILE (default here: dev) and KEPMLOG_CARGO_FEATURES (default here: the
# workspace build's) pick the addon build: the package's own default is a release build of the
# addon alone; these find the addon `cargo build --workspace` already built, to stay within CI's
# time.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
export TMPDIR=/tmp   # Mosquitto drops root and must read the devagent's temp files

. scripts/lib.sh
need_tools test-node node:nodejs npm:npm
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
  echo "test-node: Node $(node --version) is too old; kepmlog needs Node 18 or later" >&2
  exit 1
fi
scripts/setup.sh

target_dir=${CARGO_TARGET_DIR:-$repo/target}
export KEPM_DEVAGENT=${KEPM_DEVAGENT:-$target_dir/debug/kepm-devagent}
# scripts/test.sh built it with the workspace; `-p` alone would resolve features anew.
[ -x "$KEPM_DEVAGENT" ] || { echo "== node: build kepm-devagent"; cargo build -q --locked -p kepm-devagent; }
export KEPMLOG_CARGO_PROFILE=${KEPMLOG_CARGO_PROFILE:-dev}
# The features scripts/test.sh built the workspace with: the addon it built is up to date,
# where `-p kepmlog-node` would rebuild the dependencies for its own feature set (minutes).
export KEPMLOG_CARGO_FEATURES=${KEPMLOG_CARGO_FEATURES-kepmlog/log,kepmlog/tracing}
npm_flags=(--no-audit --no-fund --loglevel=error)

echo "== node: npm install ./bindings/node (into target/node-consumer)"
consumer=$repo/target/node-consumer
rm -rf "$consumer"
mkdir -p "$consumer"
printf '{ "name": "kepmlog-node-consumer", "private": true }\n' >"$consumer/package.json"
(cd "$consumer" && npm install "${npm_flags[@]}" "$repo/bindings/node" "winston@^3.13.0" "pino@^10.0.0")
test -f "$consumer/node_modules/kepmlog/kepmlog.node"
# The tests run as the consumer's code, so 'kepmlog', 'winston' and 'pino' resolve as they would for a user.
cp -r "$repo/bindings/node/test" "$consumer/test"

echo "== node: install the example job tool into target/agent-root"
(cd "$repo/examples/node" && npm install "${npm_flags[@]}" --no-package-lock)
command=$(node -p 'require("./examples/jobs/secret-scanner-node.json").tasks[0].command')
bindir=$repo/target/agent-root/Jobs/bin/$command
mkdir -p "$bindir"
cat >"$bindir/$command" <<LAUNCHER
#!/bin/sh
# Launcher installed by scripts/test-node.sh: the agent runs Jobs/bin/$command/$command.
exec "$(command -v node)" "$repo/examples/node/secret-scanner.mjs" "\$@"
LAUNCHER
chmod +x "$bindir/$command"

echo "== node: tests (node --test)"
cd "$consumer"
KEPMLOG_REPO=$repo KEPM_AGENT_ROOT=$repo/target/agent-root node --test test/*.test.js
