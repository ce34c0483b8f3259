#!/usr/bin/env bash
# Go suite: installs libkepmlog (release, shared with test-c.sh's build) into
# target/kepmlog-prefix, runs `go vet` and `go test` of bindings/go against devagents (vectors,
# bad input, events and denial, the slog handler, 8 goroutines vs shutdown/close), then builds
# examples/go into target/agent-root/Jobs/bin/ (test-jobs.sh runs it through its job file).
set -euo pipefail
cd "$(dirname "$0")/.."
export TMPDIR=/tmp GOTOOLCHAIN=local GOFLAGS=-mod=mod
repo=$PWD
target=${CARGO_TARGET_DIR:-$repo/target}
prefix=$target/kepmlog-prefix

. scripts/lib.sh
need_tools test-go go:golang-go pkg-config:pkg-config make:make cc:gcc

export KEPM_DEVAGENT=${KEPM_DEVAGENT:-$target/debug/kepm-devagent}
# scripts/test.sh built it with the workspace; `-p` alone would resolve features anew.
[ -x "$KEPM_DEVAGENT" ] || cargo build -q --locked -p kepm-devagent
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

echo "== go: all passed"
