#!/usr/bin/env bash
# Per-call cost of kepmlog from C# (Mono, P/Invoke) beside C's, in the same run: both call the
# same libkepmlog.so (C linked against it, C# through DllImport) against one devagent broker,
# bench/c/bench.c's workload (N Info records of the same 120-byte message after a flushed
# warm-up, every call timed alone), alternating C and C# for ROUNDS rounds. Prints each
# result line and a table of the medians. Not part of CI.
#
#   bindings/dotnet/bench/run.sh [--debug]     (KEPMLOG_BENCH_N, default 100000; ROUNDS, default 3)
#   --debug: use target/debug/libkepmlog.so as it is instead of a release build.
set -euo pipefail
cd "$(dirname "$0")/../../.."
export TMPDIR=/tmp
repo=$PWD
target=${CARGO_TARGET_DIR:-$repo/target}
profile=release
[ "${1:-}" != --debug ] || profile=debug
. scripts/lib.sh
need_tools bench-dotnet mcs:mono-mcs mono:mono-runtime cc:gcc
devagent=${KEPM_DEVAGENT:-$target/debug/kepm-devagent}
[ -x "$devagent" ] || cargo build -q --locked -p kepm-devagent
if [ "$profile" = release ]; then cargo build -q --locked --release -p kepmlog-ffi; fi
lib=$target/$profile/libkepmlog.so
[ -f "$lib" ] || { echo "bench-dotnet: no $lib: cargo build -p kepmlog-ffi first" >&2; exit 1; }

out=$target/dotnet-bench
rm -rf "$out" && mkdir -p "$out"
cp "$lib" "$out/libkepmlog.so"
ln -sf libkepmlog.so "$out/libkepmlog.so.0"   # its SONAME, which the C program asks for
cc -std=c99 -O2 -Iinclude -o "$out/bench-c" bench/c/bench.c -L"$out" -lkepmlog -Wl,-rpath,"$out"
mcs -nologo -langversion:7 -optimize+ -target:library -out:"$out/Kepmlog.dll" bindings/dotnet/src/*.cs
mcs -nologo -langversion:7 -optimize+ -r:"$out/Kepmlog.dll" -out:"$out/Bench.exe" bindings/dotnet/bench/Bench.cs

work=$(mktemp -d)
agent_pid=""
trap '[ -z "$agent_pid" ] || kill "$agent_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
mkfifo "$work/in"
"$devagent" serve --allow KeeperLogger --no-capture <"$work/in" >"$work/out" &
agent_pid=$!
exec 3>"$work/in"
for _ in $(seq 1 300); do grep -q '"event":"ready"' "$work/out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/.*"broker_port":\([0-9]*\).*/\1/p' "$work/out" | head -n 1)
ca=$(sed -n 's/.*"ca":"\([^"]*\)".*/\1/p' "$work/out" | head -n 1)
[ -n "$port" ] && [ -n "$ca" ] || { echo "bench-dotnet: the devagent did not start" >&2; exit 1; }
export KEPMLOG_BENCH_PORT=$port KEPMLOG_BENCH_CA=$ca KEPMLOG_BENCH_N=${KEPMLOG_BENCH_N:-100000}

echo "kepmlog per-call cost, C vs C# (Mono $(mono --version | sed -n '1s/.*version \([0-9.]*\).*/\1/p')), $KEPMLOG_BENCH_N records, $profile libkepmlog.so, no subscriber"
for round in $(seq 1 "${ROUNDS:-3}"); do
  "$out/bench-c" | tee -a "$work/c.jsonl"
  mono "$out/Bench.exe" | tee -a "$work/dotnet.jsonl"
done
echo quit >&3
python3 - "$work/c.jsonl" "$work/dotnet.jsonl" <<'PY'
import json, statistics, sys
print("| peer | call p50 / p99 / p99.9 µs | records/s | CPU µs/record | delivered/N |")
print("|---|---|---|---|---|")
for name, path in (("C `kepmlog_log`", sys.argv[1]), ("C# `Logger.Info` (Mono)", sys.argv[2])):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    bad = [r for r in rows if "error" in r]
    if bad:
        sys.exit(f"{name}: {bad[0]['error']}")
    med = lambda k: statistics.median(r[k] for r in rows)
    n = rows[0]["n"]
    print(f"| {name} | {med('p50_ns')/1000:.2f} / {med('p99_ns')/1000:.2f} / {med('p999_ns')/1000:.1f} | "
          f"{statistics.median(r['acked']/r['secs'] for r in rows):,.0f} | {med('cpu_us')/n:.2f} | "
          f"{min(r['acked'] for r in rows):,}/{n:,} |")
PY
