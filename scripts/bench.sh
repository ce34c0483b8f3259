#!/usr/bin/env bash
# Benchmarks (BENCHMARKS.md): kepmlog from Rust, C, Go, Python (`Logger.info` and `logging`)
# and Node next to what a job author would otherwise use (a raw rumqttc loop, paho-mqtt 2,
# mqtt.js 5, mosquitto_pub), against the devagent's Mosquitto over TLS, with and without a
# subscriber x Receive Maximum 20 and 65,535; plus kepmlog's RSS with the broker down and the
# time to the first PUBACK. Installs what it needs (apt, pip and npm into target/bench), builds
# the peers in release, runs bench/run.py, writes BENCHMARKS.md.
#
#   scripts/bench.sh                 full run (100,000 records x 3 rounds x 4 settings), ~12 min
#   scripts/bench.sh --quick         smoke test: 10,000 records, 1 round, 2 settings, short
#                                    extras; writes target/bench/BENCHMARKS-quick.md
#   options: --settings sub-rm20,sub-rm65535,nosub-rm20,nosub-rm65535
#            --peers kepmlog-rust,kepmlog-c,kepmlog-go,kepmlog-python,kepmlog-python-logging,
#                    kepmlog-node,rumqttc,paho,mqttjs,mosquitto_pub
#            --rounds N  --out FILE  --no-extras  --extras-only  --skip-build (reuse the last build)
#   KEPMLOG_BENCH_N=... overrides the record count.
set -euo pipefail
cd "$(dirname "$0")/.."
export TMPDIR=/tmp GOTOOLCHAIN=local GOFLAGS=-mod=mod
repo=$PWD
target=${CARGO_TARGET_DIR:-$repo/target}
prefix=$target/kepmlog-prefix
out=$target/bench
skip_build=false
args=()
for a in "$@"; do
  case $a in
    --skip-build) skip_build=true ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$a") ;;
  esac
done

scripts/setup.sh   # mosquitto, cargo
. scripts/lib.sh
need_tools bench mosquitto_pub:mosquitto-clients cc:gcc make:make pkg-config:pkg-config \
  go:golang-go node:nodejs npm:npm python3-venv /usr/bin/time:time   # time: mosquitto_pub's peak RSS
mkdir -p "$out"

if ! $skip_build; then
  echo "== bench: build (release): libkepmlog, kepm-devagent, bench-kepmlog, bench-rumqttc"
  make -s -C ffi install PREFIX="$prefix"          # release libkepmlog.a + pkg-config (C, Go)
  cargo build --release -q -p kepm-devagent -p kepmlog-bench
  export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
  echo "== bench: C and Go peers"
  # shellcheck disable=SC2046
  cc -std=c99 -O2 -Wall -Wextra -Werror -o "$out/bench-c" bench/c/bench.c \
    $(pkg-config --cflags --libs kepmlog-static)
  (cd bench/go && test -z "$(gofmt -l .)" && go vet . && go build -o "$out/bench-go" .)
  echo "== bench: Python venv (pip install ./bindings/python paho-mqtt 2)"
  [ -x "$out/venv/bin/python" ] || python3 -m venv "$out/venv"
  "$out/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    ./bindings/python "paho-mqtt>=2,<3"
  echo "== bench: Node scratch install (npm install ./bindings/node mqtt@5)"
  mkdir -p "$out/node"
  [ -f "$out/node/package.json" ] || printf '{ "name": "kepmlog-bench-node", "private": true }\n' >"$out/node/package.json"
  (cd "$out/node" && npm install --no-audit --no-fund --loglevel=error "$repo/bindings/node" "mqtt@^5")
fi

echo "== bench: run (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
exec python3 bench/run.py "${args[@]}" \
  --devagent "$target/release/kepm-devagent" --rust-bin-dir "$target/release" --bin-dir "$out" \
  --python "$out/venv/bin/python" --node "$(command -v node)" --node-path "$out/node/node_modules"
