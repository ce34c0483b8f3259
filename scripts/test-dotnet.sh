#!/usr/bin/env bash
# .NET binding suite, under Mono (installed here with apt-get): compiles the Kepmlog assembly
# (bindings/dotnet/src, with mcs against Mono's 4.x profile), its test runner and the example
# tool; runs the tests against real kepm-devagent brokers (vectors, levels, bad input, events
# and denial, 8 threads vs shutdown/dispose, two loggers on one connection, the finalizer, the
# spool, stderr, exit without Dispose, a missing native library) over the debug libkepmlog.so;
# then installs examples/dotnet under target/agent-root (test-jobs.sh runs it through its job).
set -euo pipefail
cd "$(dirname "$0")/.."
export TMPDIR=/tmp   # Mosquitto drops root and must read the devagent's temp files
started=$SECONDS
repo=$PWD
target=${CARGO_TARGET_DIR:-$repo/target}
out=$target/dotnet

. scripts/lib.sh
need_tools test-dotnet mcs:mono-mcs mono:mono-runtime /usr/sbin/mosquitto:mosquitto

# scripts/test.sh built both with the workspace (`-p` alone would resolve features anew).
export KEPM_DEVAGENT=${KEPM_DEVAGENT:-$target/debug/kepm-devagent}
lib=$target/debug/libkepmlog.so
if [ ! -x "$KEPM_DEVAGENT" ] || [ ! -f "$lib" ]; then
  cargo build -q --locked -p kepmlog-ffi -p kepm-devagent
fi

# The header's default close timeout is a literal, and so is the binding's: keep them equal.
want=$(sed -n 's/^#define KEPMLOG_DEFAULT_CLOSE_TIMEOUT_MS \([0-9]*\)$/\1/p' include/kepmlog.h)
grep -q "DefaultCloseTimeout = TimeSpan.FromMilliseconds($want);" bindings/dotnet/src/LoggerOptions.cs ||
  { echo "test-dotnet: LoggerOptions.DefaultCloseTimeout is not KEPMLOG_DEFAULT_CLOSE_TIMEOUT_MS ($want ms)" >&2; exit 1; }

echo "== dotnet: compile (mcs $(mcs --version | sed 's/.*version //'))"
rm -rf "$out" && mkdir -p "$out"
mcs=(mcs -nologo -langversion:7 -warnaserror+)
"${mcs[@]}" -target:library -doc:"$out/Kepmlog.xml" -out:"$out/Kepmlog.dll" bindings/dotnet/src/*.cs
cp bindings/dotnet/Kepmlog.dll.config "$out/"
"${mcs[@]}" -r:"$out/Kepmlog.dll" -r:System.Core.dll -out:"$out/KepmlogTests.exe" bindings/dotnet/tests/*.cs
"${mcs[@]}" -r:"$out/Kepmlog.dll" -r:System.Core.dll -out:"$out/secret-scanner-dotnet.exe" examples/dotnet/SecretScanner.cs
# Where NuGet puts a package's native library in an application's output (.NET's portable
# layout, which Kepmlog.dll.config maps Mono to).
install -D -m 755 "$lib" "$out/runtimes/linux-x64/native/libkepmlog.so"

echo "== dotnet: tests (mono)"
KEPMLOG_REPO=$repo mono --debug "$out/KepmlogTests.exe"

echo "== dotnet: example tool"
bin=$target/agent-root/Jobs/bin/secret-scanner-dotnet
rm -rf "$bin" && mkdir -p "$bin"
cp "$out/secret-scanner-dotnet.exe" "$out/Kepmlog.dll" "$out/Kepmlog.dll.config" "$bin/"
install -D -m 755 "$lib" "$bin/runtimes/linux-x64/native/libkepmlog.so"
# exec: the process the agent started is the one that connects (the agent trusts that pid).
cat >"$bin/secret-scanner-dotnet" <<EOS
#!/bin/sh
exec mono "\$(dirname "\$0")/secret-scanner-dotnet.exe" "\$@"
EOS
chmod +x "$bin/secret-scanner-dotnet"
echo "== dotnet: all passed in $((SECONDS - started)) s"
