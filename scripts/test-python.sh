#!/usr/bin/env bash
# Python binding suite: builds and installs the kepmlog package into a venv under target/ the
# way a user would (pip install ./bindings/python), installs the example job tool into the
# agent root, then runs pytest against real kepm-devagent brokers (TLS Mosquitto).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export TMPDIR=/tmp   # Mosquitto drops root and must read the devagent's temp files
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
VENV=$TARGET/python-venv
PY=${PYTHON:-python3}

command -v "$PY" >/dev/null || { echo "test-python: $PY not found" >&2; exit 1; }
. scripts/lib.sh
need_tools test-python python3-venv

DEVAGENT=${KEPM_DEVAGENT:-$TARGET/debug/kepm-devagent}
if [ ! -x "$DEVAGENT" ]; then
  cargo build -p kepm-devagent --locked
fi
export KEPM_DEVAGENT=$DEVAGENT

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
echo "== python: pip install ./bindings/python (release build of the extension)"
# One build: maturin's cargo build of the extension, in the workspace target dir.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check ./bindings/python "pytest>=7" "structlog>=22.1" "loguru>=0.6"

# The example job tool, where the agent looks for the task's command.
LAUNCHER_DIR=$TARGET/agent-root/Jobs/bin/secret-scanner-py
mkdir -p "$LAUNCHER_DIR"
cat > "$LAUNCHER_DIR/secret-scanner-py" <<EOF
#!/bin/sh
exec "$VENV/bin/python" "$ROOT/examples/python/secret_scanner.py" "\$@"
EOF
chmod +x "$LAUNCHER_DIR/secret-scanner-py"
export KEPM_PY_EXAMPLE_LAUNCHER=$LAUNCHER_DIR/secret-scanner-py

echo "== python: pytest"
cd bindings/python
set +e
"$VENV/bin/python" -m pytest -p no:cacheprovider -q -ra tests
rc=$?
set -e
exit $rc
