#!/usr/bin/env bash
# Go suite: installs libkepmlog (release, shared with test-c.sh's build) into
# target/kepmlog-prefix, runs `go vet` and `go test` of bindings/go against devagents (vectors,
# bad input, events and denial, the slog handler, 8 goroutines vs shutdown/close), then builds
# examples/go into target/agent-root/Jobs/bin/ and runs it once against a devagent.
set -euo pipefail
cd "$(dirname "$0")/.."
export TMPDIR=/tmp GOTOOLCHAIN=local GOFLAGS=-mod=mod
repo=$PWD
target=${CARGO_TARGET_DIR:-$repo/target}
prefix=$target/kepmlog-prefix

need=()
command -v go >/dev/null 2>&1 || need+=(golang-go)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v make >/dev/null 2>&1 || need+=(make)
command -v cc >/dev/null 2>&1 || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
  echo "test-go: installing ${need[*]} (apt-get)" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cargo build -q -p kepm-devagent
export KEPM_DEVAGENT=${KEPM_DEVAGENT:-$target/debug/kepm-devagent}
echo "== go: build and install libkepmlog into $prefix"
make -s -C ffi install PREFIX="$prefix"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig

echo "== go: vet and test bindings/go"
(cd bindings/go && test -z "$(gofmt -l .)" || { gofmt -l .; echo "test-go: run gofmt -w" >&2; exit 1; })
(cd bindings/go && go vet ./... && go test -count=1 -v ./...)

echo "== go: example tool"
bin=$target/agent-root/Jobs/bin/secret-scanner-go
mkdir -p "$bin"
(cd examples/go && test -z "$(gofmt -l .)" && go vet ./... && go build -o "$bin/secret-scanner-go" .)

job=secret-scanner-go
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkfifo "$work/in"
"$KEPM_DEVAGENT" serve --allow KeeperLogger --allow "Jobs/$job/events" <"$work/in" >"$work/out" &
pid=$!
exec 3>"$work/in"
for _ in $(seq 1 300); do grep -q '"event":"ready"' "$work/out" 2>/dev/null && break; sleep 0.1; done
api_base=$(sed -n 's/.*"api_base":"\([^"]*\)".*/\1/p' "$work/out" | head -n 1)
[ -n "$api_base" ] || { echo "test-go: the devagent did not start" >&2; exit 1; }
set +e
KEEPER_JOB_ID=$job KEEPER_JOB_NAME=$job "$bin/secret-scanner-go" "--keeper-api-base=$api_base" examples
code=$?
set -e
for _ in $(seq 1 50); do grep -q 'Scan complete' "$work/out" && break; sleep 0.1; done
echo quit >&3; exec 3>&-; wait "$pid" || true
records=$(grep '"topic":"KeeperLogger"' "$work/out" | grep -c '"Source":"SecretScanner"' || true)
events=$(grep -c "\"topic\":\"Jobs/$job/events\"" "$work/out" || true)
if [ "$code" -ne 0 ] || ! grep -q 'Scan complete' "$work/out" || [ "$events" -lt 2 ]; then
  echo "test-go: $job did not deliver (exit $code, $records records, $events events)" >&2
  cat "$work/out" >&2
  exit 1
fi
echo "$job: exit $code, $records records and $events events received by the broker"
echo "== go: all passed"
