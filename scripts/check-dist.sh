#!/usr/bin/env bash
# Prebuilt artifacts check (CI runs the default through scripts/test-dist.sh, after
# scripts/test-cross.sh, whose Windows release builds scripts/dist.sh reuses; --all takes ~24
# min from cold, more than the CI budget has room for): runs scripts/dist.sh (Linux x86_64
# and Windows; with --all every target), then checks what a user gets from dist/, on a PATH
# without cargo or rustc:
#   - the manylinux wheel installs into a fresh venv (auditwheel show already passed in
#     dist.sh) and delivers a record through a devagent;
#   - the npm tarballs (main + linux-x64-gnu) install into a fresh project offline, no
#     package has an install script, the addon is the platform package's, and a record arrives;
#   - the Linux SDK, extracted and then moved: the C example built with pkg-config (static) and
#     with CMake find_package (shared) both deliver; the Go example builds against it with
#     PKG_CONFIG_PATH and delivers;
#   - the Windows wheel, SDK zip, CLI zip and npm package: their file lists and binary types;
#     the C example built with MinGW against the extracted Windows SDK (static) and kepmlog.exe
#     run under Wine; the CLI musl binary is static and delivers;
#   - the NuGet package: its file list, one runtimes/{rid}/native/ library per target built
#     (binary types), and the C# example compiled against its Kepmlog.dll delivering under Mono
#     with the package's linux-x64 library;
#   - the sdist's file list; sha256sum -c SHA256SUMS;
#   - with --all (dist.sh --targets all): aarch64 Linux and both macOS targets, which cannot run
#     here: every archive's file list and binary types, the dylib's install name, the npm
#     packages' os/cpu/libc and their addons' N-API imports, the wheels' extension modules, the
#     C example linked with zig against each macOS SDK, and the aarch64 CLI run under
#     qemu-aarch64, delivering to the devagent.
# Ends with a table: every artifact, its size and what checked it.
#   scripts/check-dist.sh [--all]
set -euo pipefail
cd "$(dirname "$0")/.."
export TMPDIR=/tmp   # Mosquitto drops root and must read the devagent's temp files
repo=$PWD
tdir=${CARGO_TARGET_DIR:-$repo/target}
dist=$repo/dist
wine=/usr/lib/wine/wine64
started=$SECONDS
lap() { echo "check-dist: $1 ($((SECONDS - started))s so far)"; }

. scripts/lib.sh
need_tools check-dist cc:gcc cmake:cmake make:make pkg-config:pkg-config go:golang-go \
  unzip:unzip file:file node:nodejs npm:npm "$wine:wine64" mcs:mono-mcs mono:mono-runtime \
  x86_64-w64-mingw32-gcc:gcc-mingw-w64-x86-64 python3-venv
# Under scripts/test.sh, the devagent it built with the workspace (`-p` alone would resolve
# features anew and build it again); alone, this checkout's, brought up to date.
if [ -n "${KEPM_DEVAGENT:-}" ]; then
  devagent=$KEPM_DEVAGENT
else
  cargo build -q --locked -p kepm-devagent
  devagent=$tdir/debug/kepm-devagent
fi

# Every target of dist.sh (--targets all) or the default two; the stage-2 targets (aarch64 Linux,
# macOS) are checked by type, tags and symbols, and the aarch64 CLI runs under qemu.
targets=default
case ${1:-} in
  "") ;;
  --all) targets=all ;;
  *) echo "usage: scripts/check-dist.sh [--all]" >&2; exit 2 ;;
esac
if [ "$targets" = all ]; then
  need_tools check-dist qemu-aarch64:qemu-user /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1:libc6-arm64-cross
fi

echo "== dist: scripts/dist.sh"
if [ "$targets" = all ]; then scripts/dist.sh --targets all; else scripts/dist.sh; fi
lap "dist built"
# zig (from dist.sh's venv) links the C example against the macOS SDKs, through cargo-zigbuild's
# driver, which brings the libiconv stub zig's macOS SDK stubs lack (a Mac has the real one).
zig_cc=("$tdir/zig-venv/bin/cargo-zigbuild" zig cc --)
export CARGO_ZIGBUILD_PYTHON_PATH=$tdir/zig-venv/bin/python
version=$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
wine_prefix "$tdir/wine-prefix"

work=$(mktemp -d)
agent_pid=""
cleanup() {
  [ -z "$agent_pid" ] || kill "$agent_pid" 2>/dev/null || true
  "${wine%64}server64" -k 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# From here on, no Rust toolchain: PATH without the directories that hold cargo or rustc.
# (The zig that stands in for a Mac's C compiler below needs the full one: cargo-zigbuild's
# driver asks rustc for its target list.)
full_path=$PATH
clean=""
IFS=: read -r -a dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  [ -n "$d" ] && [ ! -e "$d/cargo" ] && [ ! -e "$d/rustc" ] && clean=${clean:+$clean:}$d
done
export PATH=$clean
unset CARGO CARGO_HOME RUSTUP_HOME RUSTC CARGO_TARGET_DIR
! command -v cargo >/dev/null && ! command -v rustc >/dev/null ||
  { echo "check-dist: cargo or rustc still on PATH" >&2; exit 1; }
echo "check-dist: checking from dist/ with PATH=$PATH (no cargo, no rustc)"

declare -A checked
note() { checked[$1]="${checked[$1]:+${checked[$1]}; }$2"; }
fail() { echo "check-dist: $1" >&2; [ ! -f "$work/out" ] || cat "$work/out" >&2; exit 1; }
one() { # the single dist/ file matching a glob
  local f
  f=$(cd "$dist" && ls -- $1 2>/dev/null) || fail "no $1 in dist/"
  [ "$(wc -l <<<"$f")" -eq 1 ] || fail "more than one $1 in dist/: $f"
  echo "$f"
}

# expect WHAT SOURCE MESSAGE CLIENT_RE: the broker received that record from that client.
expect() {
  grep '"topic":"KeeperLogger"' "$work/out" | grep "\"Source\":\"$2\"" | grep -cF -- "$3" >/dev/null ||
    fail "$1: the broker did not receive \"$3\" from $2"
  grep -Eq "\"client_id\":\"$4\"" "$work/out" || fail "$1: no client $4"
  echo "$1: the broker received \"$3\" (client $4)"
}
# run_scanner WHAT JOB TOKEN PROGRAM...: an example secret scanner run as the agent would; its
# summary record must arrive.
run_scanner() {
  local what=$1 job=$2 token=$3
  shift 3
  start_agent "$job"
  local code=0
  KEEPER_JOB_ID=$job "$@" "--keeper-api-base=$api_base" examples >"$work/tool.log" 2>&1 || code=$?
  [ "$code" -eq 0 ] || { stop_agent x; cat "$work/tool.log" >&2; fail "$what exited $code"; }
  stop_agent 'Scan complete'
  expect "$what" SecretScanner 'Scan complete: ' "${job}_${token}_[0-9]+"
}

echo "== dist: sha256sum -c SHA256SUMS"
(cd "$dist" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not match dist/"
for f in "$dist"/*; do
  [ "$(basename "$f")" = SHA256SUMS ] || grep -q "  $(basename "$f")\$" "$dist/SHA256SUMS" ||
    fail "SHA256SUMS does not list $(basename "$f")"
done
for f in "$dist"/*; do note "$(basename "$f")" "sha256sum -c"; done

echo "== dist: the manylinux wheel in a fresh venv"
whl=$(one "kepmlog-$version-cp39-abi3-manylinux*_x86_64.whl")
note "$whl" "auditwheel show (dist.sh): manylinux_2_17"
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index "$dist/$whl"
start_agent dist-python
"$work/venv/bin/python" - "$api_base" <<'EOF' || { stop_agent x; fail "the wheel's logger failed"; }
import sys, kepmlog
log = kepmlog.Logger("DistWheel", job_id="dist-python", token="wheel", api_base=sys.argv[1])
log.info("Dist", "delivered from the manylinux wheel")
sys.exit(0 if log.shutdown(5.0) == 0 else 1)
EOF
stop_agent 'manylinux wheel'
expect "wheel" DistWheel "delivered from the manylinux wheel" 'dist-python_wheel_[0-9]+'
note "$whl" "pip install in a fresh venv, delivered to the devagent"
lap "wheel checked"

echo "== dist: the npm tarballs in a fresh project (offline)"
main_tgz=$(one "kepmlog-$version.tgz")
linux_tgz=$(one "kepmlog-linux-x64-gnu-$version.tgz")
proj=$work/npm-project
mkdir -p "$proj"
printf '{ "name": "kepmlog-dist-check", "private": true }\n' >"$proj/package.json"
(cd "$proj" && npm install --offline --no-audit --no-fund --foreground-scripts --loglevel=error \
  "$dist/$main_tgz" "$dist/$linux_tgz") >"$work/npm.log" 2>&1 || { cat "$work/npm.log" >&2; fail "npm install failed"; }
! grep -i cargo "$work/npm.log" || fail "npm install mentions cargo"
(cd "$proj" && npm ls --all) | tee "$work/npm-ls.txt"
grep -q "kepmlog@$version" "$work/npm-ls.txt" && grep -q "kepmlog-linux-x64-gnu@$version" "$work/npm-ls.txt" ||
  fail "npm ls does not show kepmlog and kepmlog-linux-x64-gnu"
scripts=$(cd "$proj" && npm query ':attr(scripts, [install]), :attr(scripts, [preinstall]), :attr(scripts, [postinstall])')
[ "$(node -e 'console.log(JSON.parse(process.argv[1]).length)' "$scripts")" -eq 0 ] ||
  fail "installed packages carry install scripts: $scripts"
[ ! -e "$proj/node_modules/kepmlog/kepmlog.node" ] || fail "the main package carries or built a kepmlog.node"
start_agent dist-node
(cd "$proj" && node - "$api_base") <<'EOF' || { stop_agent x; fail "the npm package's logger failed"; }
const { Logger } = require('kepmlog');
const addon = require.resolve('kepmlog-linux-x64-gnu');
const log = new Logger({ source: 'DistNpm', jobId: 'dist-node', token: 'npm', apiBase: process.argv[2] });
log.info('Dist', `delivered from the npm tarballs (${require('node:path').basename(addon)})`);
log.shutdown(5000).then((n) => process.exit(n === 0 ? 0 : 1), (e) => { console.error(e); process.exit(1); });
EOF
stop_agent 'npm tarballs'
expect "npm" DistNpm "delivered from the npm tarballs (kepmlog.linux-x64-gnu.node)" 'dist-node_npm_[0-9]+'
(cd "$proj" && node --input-type=module -e "import { Logger, Level } from 'kepmlog';
  if (typeof Logger !== 'function' || Level.Info !== 1) process.exit(1);") || fail "the ESM entry point does not load"
# Without the platform package (npm --omit=optional): the loader's error names the platform.
bare=$work/npm-bare
mkdir -p "$bare"
printf '{ "name": "kepmlog-dist-bare", "private": true }\n' >"$bare/package.json"
(cd "$bare" && npm install --offline --omit=optional --no-audit --no-fund --loglevel=error "$dist/$main_tgz") >"$work/npm-bare.log" 2>&1 ||
  { cat "$work/npm-bare.log" >&2; fail "npm install of the main package alone failed"; }
if (cd "$bare" && node -e "require('kepmlog')") 2>"$work/bare.err"; then
  fail "kepmlog loaded without its platform package"
fi
grep -q "kepmlog has no prebuilt binary for linux-x64-gnu and none was built from source" "$work/bare.err" ||
  { cat "$work/bare.err" >&2; fail "the loader's error does not name the platform"; }
echo "npm without the platform package: $(grep -o 'kepmlog has no prebuilt binary for [a-z0-9-]*' "$work/bare.err")"
note "$main_tgz" "npm install --offline with $linux_tgz: no install script, delivered to the devagent; alone: the error names the platform"
note "$linux_tgz" "the addon the main package loaded (npm ls, require.resolve), delivered"
lap "npm checked"

echo "== dist: the Linux SDK, extracted and moved"
sdk_tgz=$(one "kepmlog-$version-x86_64-unknown-linux-gnu.tar.gz")
mkdir -p "$work/extract" "$work/moved"
tar -C "$work/extract" -xzf "$dist/$sdk_tgz"
mv "$work/extract/kepmlog-$version-x86_64-unknown-linux-gnu" "$work/moved/sdk"
sdk=$work/moved/sdk
for f in include/kepmlog.h include/kepmlog.hpp include/kepmlog_spdlog.hpp lib/libkepmlog.a "lib/libkepmlog.so.$version" \
  lib/libkepmlog.so.0 lib/libkepmlog.so lib/pkgconfig/kepmlog.pc lib/pkgconfig/kepmlog-static.pc \
  lib/cmake/kepmlog/kepmlog-config.cmake lib/cmake/kepmlog/kepmlog-config-version.cmake LICENSE README.md; do
  [ -e "$sdk/$f" ] || fail "$sdk_tgz has no $f"
done
export PKG_CONFIG_PATH=$sdk/lib/pkgconfig
[ "$(pkg-config --variable=includedir kepmlog-static)" = "$sdk/lib/pkgconfig/../../include" ] ||
  fail "kepmlog-static.pc is not relative to its directory: $(pkg-config --variable=includedir kepmlog-static)"
# shellcheck disable=SC2046
cc -std=c99 -Wall -Wextra -Werror -O2 -o "$work/secret-scanner-c" examples/c/secret_scanner.c \
  $(pkg-config --cflags --libs kepmlog-static)
! grep -q libkepmlog <<<"$(ldd "$work/secret-scanner-c")" || fail "the pkg-config static build links libkepmlog.so"
run_scanner "C example (pkg-config, static)" secret-scanner-c secret-scanner-c "$work/secret-scanner-c"
mkdir -p "$work/cmake-c"
cp examples/c/secret_scanner.c "$work/cmake-c/"
cat >"$work/cmake-c/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.16)
project(secret_scanner_c C)
find_package(kepmlog $version REQUIRED)
add_executable(secret-scanner-c secret_scanner.c)
target_link_libraries(secret-scanner-c PRIVATE kepmlog::shared)
EOF
cmake -S "$work/cmake-c" -B "$work/cmake-c/build" -DCMAKE_PREFIX_PATH="$sdk" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/cmake-c/build" >/dev/null
grep -q "$sdk/lib/libkepmlog.so.0" <<<"$(ldd "$work/cmake-c/build/secret-scanner-c")" ||
  fail "the CMake build does not use the moved SDK's libkepmlog.so.0"
run_scanner "C example (CMake find_package, shared)" secret-scanner-c secret-scanner-c "$work/cmake-c/build/secret-scanner-c"
note "$sdk_tgz" "extracted and moved: C example via pkg-config (static) and CMake (shared) delivered"

echo "== dist: the Go example against the SDK (PKG_CONFIG_PATH)"
# A copy of the Go package and example outside the repository: nothing can reach target/.
mkdir -p "$work/go/bindings" "$work/go/examples"
cp -r bindings/go "$work/go/bindings/go"
cp -r examples/go "$work/go/examples/go"
(cd "$work/go/examples/go" && GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=1 go build -o "$work/secret-scanner-go" .)
run_scanner "Go example (cgo, PKG_CONFIG_PATH)" secret-scanner-go secret-scanner-go "$work/secret-scanner-go"
note "$sdk_tgz" "Go example built with PKG_CONFIG_PATH only, delivered"
# Without pkg-config, as bindings/go documents: CGO_CFLAGS/CGO_LDFLAGS and PKG_CONFIG=/bin/true.
native=$(sed -n 's/^Libs: \${libdir}\/libkepmlog.a //p' "$sdk/lib/pkgconfig/kepmlog-static.pc")
(cd "$work/go/examples/go" && PKG_CONFIG=/bin/true CGO_CFLAGS="-I$sdk/include" \
  CGO_LDFLAGS="$sdk/lib/libkepmlog.a $native" GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=1 \
  go build -o "$work/go-flags/secret-scanner-go" .)
run_scanner "Go example (cgo, CGO_CFLAGS/CGO_LDFLAGS)" secret-scanner-go secret-scanner-go "$work/go-flags/secret-scanner-go"
note "$sdk_tgz" "Go example built with CGO_CFLAGS/CGO_LDFLAGS, delivered"
unset PKG_CONFIG_PATH
lap "Linux SDK checked"

echo "== dist: the CLI (musl, static)"
cli_tgz=$(one "kepmlog-cli-$version-x86_64-unknown-linux-musl.tar.gz")
tar -C "$work" -xzf "$dist/$cli_tgz"
cli=$work/kepmlog-cli-$version-x86_64-unknown-linux-musl/kepmlog
grep -q "statically linked\|static-pie linked" <<<"$(file -b "$cli")" || fail "$cli_tgz: kepmlog is not static: $(file -b "$cli")"
[ -f "$work/kepmlog-cli-$version-x86_64-unknown-linux-musl/LICENSE" ] || fail "$cli_tgz has no LICENSE"
start_agent dist-cli
KEEPER_JOB_ID=dist-cli KEPMLOG_TOKEN=cli KEPMLOG_SOURCE=DistCli "$cli" --keeper-api-base "$api_base" \
  log --level info --category Dist "delivered by the musl CLI" || { stop_agent x; fail "the musl CLI failed"; }
stop_agent 'musl CLI'
expect "musl CLI" DistCli "delivered by the musl CLI" 'dist-cli_cli_[0-9]+'
note "$cli_tgz" "static (file), delivered to the devagent"

echo "== dist: the Windows artifacts (file lists, binary types, Wine)"
list_has() { # ARCHIVE-LISTING-FILE WHAT PATH...
  local listing=$1 what=$2 p
  shift 2
  for p in "$@"; do grep -qx -- "$p" "$listing" || fail "$what has no $p"; done
}
win_sdk=$(one "kepmlog-$version-x86_64-pc-windows-gnu.zip")
unzip -Z1 "$dist/$win_sdk" >"$work/win-sdk.txt"
d=kepmlog-$version-x86_64-pc-windows-gnu
list_has "$work/win-sdk.txt" "$win_sdk" "$d/include/kepmlog.h" "$d/include/kepmlog.hpp" "$d/include/kepmlog_spdlog.hpp" \
  "$d/lib/libkepmlog.a" "$d/lib/libkepmlog.dll.a" "$d/lib/kepmlog.def" "$d/bin/kepmlog.dll" \
  "$d/lib/pkgconfig/kepmlog.pc" "$d/lib/pkgconfig/kepmlog-static.pc" \
  "$d/lib/cmake/kepmlog/kepmlog-config.cmake" "$d/lib/cmake/kepmlog/kepmlog-config-version.cmake" \
  "$d/LICENSE" "$d/README.md"
unzip -q "$dist/$win_sdk" -d "$work/win"
grep -q "PE32+ executable (DLL).*x86-64" <<<"$(file -b "$work/win/$d/bin/kepmlog.dll")" || fail "kepmlog.dll is not a 64-bit DLL"
# shellcheck disable=SC2046
x86_64-w64-mingw32-gcc -std=c99 -Wall -Wextra -Werror -O2 -s -o "$work/secret-scanner-c.exe" \
  examples/c/secret_scanner.c \
  $(PKG_CONFIG_LIBDIR="$work/win/$d/lib/pkgconfig" PKG_CONFIG_PATH="" pkg-config --cflags --libs kepmlog-static)
run_scanner "Windows C example (MinGW, SDK zip, Wine)" secret-scanner-c secret-scanner-c "$wine" "$work/secret-scanner-c.exe"
note "$win_sdk" "file list; C example linked with MinGW via its pkg-config, delivered under Wine"

win_cli=$(one "kepmlog-cli-$version-x86_64-pc-windows-gnu.zip")
unzip -Z1 "$dist/$win_cli" >"$work/win-cli.txt"
list_has "$work/win-cli.txt" "$win_cli" "kepmlog-cli-$version-x86_64-pc-windows-gnu/kepmlog.exe" \
  "kepmlog-cli-$version-x86_64-pc-windows-gnu/LICENSE"
unzip -q "$dist/$win_cli" -d "$work/wincli"
got=$("$wine" "$work/wincli/kepmlog-cli-$version-x86_64-pc-windows-gnu/kepmlog.exe" --version | tr -d '\r')
[ "$got" = "kepmlog $version" ] || fail "kepmlog.exe --version under Wine printed '$got'"
echo "kepmlog.exe --version (Wine): $got"
note "$win_cli" "file list; kepmlog.exe --version under Wine"

win_whl=$(one "kepmlog-$version-cp39-abi3-win_amd64.whl")
unzip -Z1 "$dist/$win_whl" >"$work/win-whl.txt"
list_has "$work/win-whl.txt" "$win_whl" kepmlog/__init__.py kepmlog/_kepmlog.pyd kepmlog/py.typed \
  "kepmlog-$version.dist-info/WHEEL" "kepmlog-$version.dist-info/METADATA"
grep -qx 'Tag: cp39-abi3-win_amd64' <<<"$(unzip -p "$dist/$win_whl" "kepmlog-$version.dist-info/WHEEL")" ||
  fail "$win_whl: WHEEL has no Tag: cp39-abi3-win_amd64"
unzip -q "$dist/$win_whl" kepmlog/_kepmlog.pyd -d "$work/winwhl"
grep -q "PE32+ executable (DLL).*x86-64" <<<"$(file -b "$work/winwhl/kepmlog/_kepmlog.pyd")" || fail "_kepmlog.pyd is not a 64-bit DLL"
# (Into a file first: grep -q ending early would fail the pipeline under pipefail.)
x86_64-w64-mingw32-objdump -p "$work/winwhl/kepmlog/_kepmlog.pyd" >"$work/pyd.txt"
grep -q 'DLL Name: python3.dll' "$work/pyd.txt" || fail "_kepmlog.pyd does not import python3.dll (the stable ABI)"
grep -q 'PyInit__kepmlog' "$work/pyd.txt" || fail "_kepmlog.pyd does not export PyInit__kepmlog"
note "$win_whl" "file list, WHEEL tag; .pyd is PE32+, imports python3.dll, exports PyInit__kepmlog"

win_tgz=$(one "kepmlog-win32-x64-gnu-$version.tgz")
tar -tzf "$dist/$win_tgz" | sort >"$work/win-npm.txt"
list_has "$work/win-npm.txt" "$win_tgz" package/package.json package/kepmlog.win32-x64-gnu.node package/README.md
tar -C "$work" -xzf "$dist/$win_tgz" package/package.json package/kepmlog.win32-x64-gnu.node
node -e 'const p = require(process.argv[1]);
  if (p.os.join() !== "win32" || p.cpu.join() !== "x64" || p.main !== "kepmlog.win32-x64-gnu.node") process.exit(1);' \
  "$work/package/package.json" || fail "$win_tgz: package.json os/cpu/main are wrong"
grep -q "PE32+ executable (DLL).*x86-64" <<<"$(file -b "$work/package/kepmlog.win32-x64-gnu.node")" || fail "the Windows addon is not a 64-bit DLL"
x86_64-w64-mingw32-objdump -p "$work/package/kepmlog.win32-x64-gnu.node" >"$work/addon.txt"
grep -q 'DLL Name: node.exe' "$work/addon.txt" || fail "the Windows addon does not import N-API from node.exe"
platforms="linux-x64-gnu win32-x64-gnu"
[ "$targets" != all ] || platforms+=" linux-arm64-gnu darwin-x64 darwin-arm64"
tar -xzOf "$dist/$main_tgz" package/package.json | PLATFORMS=$platforms node -e '
  const p = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const want = process.env.PLATFORMS.split(" ").sort();
  const got = Object.keys(p.optionalDependencies || {}).map((n) => n.replace(/^kepmlog-/, "")).sort();
  const versions = Object.values(p.optionalDependencies || {}).every((v) => v === p.version);
  if (JSON.stringify(got) !== JSON.stringify(want) || !versions || (p.scripts || {}).install) process.exit(1);' ||
  fail "$main_tgz: optionalDependencies are not the platform packages $platforms, or it has an install script"
note "$win_tgz" "file list, os/cpu/main; addon is a PE32+ DLL importing node.exe"
note "$main_tgz" "optionalDependencies on every platform package ($platforms)"

if [ "$targets" = all ]; then
  echo "== dist: aarch64 Linux and macOS (types, tags, symbols; the aarch64 CLI under qemu)"
  # stage2 TARGET ID ARCH_RE: the SDK, CLI, npm package and wheel of one target.
  stage2() {
    local t=$1 id=$2 type_re=$3 d=kepmlog-$version-$1 os cpu libc sdk_tgz cli_tgz npm_tgz whl
    os=${id%%-*} cpu=${id#*-}; cpu=${cpu%%-*}; libc=""
    [ "$os" = linux ] && libc=glibc
    sdk_tgz=$(one "$d.tar.gz")
    mkdir -p "$work/s2/$t"
    tar -C "$work/s2/$t" -xzf "$dist/$sdk_tgz"
    local shared=lib/libkepmlog.so.$version
    [ "$os" = darwin ] && shared=lib/libkepmlog.0.dylib
    for f in include/kepmlog.h include/kepmlog.hpp lib/libkepmlog.a "$shared" lib/pkgconfig/kepmlog.pc \
      lib/pkgconfig/kepmlog-static.pc lib/cmake/kepmlog/kepmlog-config.cmake LICENSE README.md; do
      [ -e "$work/s2/$t/$d/$f" ] || fail "$sdk_tgz has no $f"
    done
    grep -Eq "$type_re" <<<"$(file -b "$work/s2/$t/$d/$shared")" ||
      fail "$sdk_tgz: $shared is $(file -b "$work/s2/$t/$d/$shared")"
    if [ "$os" = darwin ]; then
      grep -q '@rpath/libkepmlog.0.dylib' "$work/s2/$t/$d/$shared" || fail "$sdk_tgz: the dylib's install name is not @rpath/libkepmlog.0.dylib"
      # The C example linked with zig against the extracted SDK, static and shared.
      local zt=${t%%-*}-macos-none pc
      for pc in kepmlog-static kepmlog; do
        # shellcheck disable=SC2046
        PATH=$full_path "${zig_cc[@]}" -target "$zt" -std=c99 -Wall -Wextra -Werror -O2 -o "$work/s2/$t/scanner-$pc" \
          examples/c/secret_scanner.c \
          $(PKG_CONFIG_LIBDIR="$work/s2/$t/$d/lib/pkgconfig" PKG_CONFIG_PATH="" pkg-config --cflags --libs $pc)
        grep -q "Mach-O 64-bit.*executable" <<<"$(file -b "$work/s2/$t/scanner-$pc")" || fail "$t: the C example did not link ($pc)"
      done
      note "$sdk_tgz" "file list; Mach-O dylib with install name @rpath; C example linked with zig against it (static and shared)"
    else
      note "$sdk_tgz" "file list; ELF aarch64 shared library"
    fi

    cli_tgz=$(one "kepmlog-cli-$version-$t.tar.gz")
    tar -C "$work/s2/$t" -xzf "$dist/$cli_tgz"
    local cli=$work/s2/$t/kepmlog-cli-$version-$t/kepmlog
    grep -Eq "$type_re" <<<"$(file -b "$cli")" || fail "$cli_tgz: kepmlog is $(file -b "$cli")"
    [ -f "$(dirname "$cli")/LICENSE" ] || fail "$cli_tgz has no LICENSE"
    if [ "$os" = linux ]; then
      start_agent dist-arm
      KEEPER_JOB_ID=dist-arm KEPMLOG_TOKEN=cli KEPMLOG_SOURCE=DistArm \
        qemu-aarch64 -L /usr/aarch64-linux-gnu "$cli" --keeper-api-base "$api_base" \
        log --level info --category Dist "delivered by the aarch64 CLI under qemu" ||
        { stop_agent x; fail "the aarch64 CLI failed under qemu"; }
      stop_agent 'aarch64 CLI'
      expect "aarch64 CLI" DistArm "delivered by the aarch64 CLI under qemu" 'dist-arm_cli_[0-9]+'
      note "$cli_tgz" "ELF aarch64; run under qemu-aarch64, delivered to the devagent"
    else
      note "$cli_tgz" "Mach-O executable ($cpu)"
    fi

    npm_tgz=$(one "kepmlog-$id-$version.tgz")
    rm -rf "$work/package"
    tar -C "$work" -xzf "$dist/$npm_tgz" package/package.json "package/kepmlog.$id.node"
    ID=$id OS=$os CPU=$cpu LIBC=$libc node -e 'const p = require(process.argv[1]), e = process.env;
      if (p.os.join() !== e.OS || p.cpu.join() !== e.CPU || (p.libc || []).join() !== e.LIBC
        || p.main !== `kepmlog.${e.ID}.node`) process.exit(1);' "$work/package/package.json" ||
      fail "$npm_tgz: package.json os/cpu/libc/main are wrong"
    grep -Eq "$type_re" <<<"$(file -b "$work/package/kepmlog.$id.node")" ||
      fail "$npm_tgz: the addon is $(file -b "$work/package/kepmlog.$id.node")"
    # N-API comes from the node process that loads the addon (napi-rs looks its functions up
    # there at load time): the addon names them and links no Node library.
    strings "$work/package/kepmlog.$id.node" >"$work/s2/$t/addon-strings.txt"
    grep -q 'napi_create_function' "$work/s2/$t/addon-strings.txt" ||
      fail "$npm_tgz: the addon does not refer to N-API (napi_create_function)"
    ! grep -q 'libnode' "$work/s2/$t/addon-strings.txt" || fail "$npm_tgz: the addon links a Node library"
    note "$npm_tgz" "os/cpu/libc/main; the addon's type; N-API taken from the loading node"

    case $t in
      aarch64-unknown-linux-gnu) whl=$(one "kepmlog-$version-cp39-abi3-manylinux*_aarch64.whl") ;;
      x86_64-apple-darwin) whl=$(one "kepmlog-$version-cp39-abi3-macosx_*_x86_64.whl") ;;
      *) whl=$(one "kepmlog-$version-cp39-abi3-macosx_*_arm64.whl") ;;
    esac
    unzip -Z1 "$dist/$whl" >"$work/s2/$t/whl.txt"
    list_has "$work/s2/$t/whl.txt" "$whl" kepmlog/__init__.py kepmlog/py.typed "kepmlog-$version.dist-info/WHEEL"
    local ext
    ext=$(grep -E '^kepmlog/_kepmlog.*\.so$' "$work/s2/$t/whl.txt") || fail "$whl has no extension module"
    unzip -q -o "$dist/$whl" "$ext" -d "$work/s2/$t/whl"
    grep -Eq "$type_re" <<<"$(file -b "$work/s2/$t/whl/$ext")" || fail "$whl: $ext is $(file -b "$work/s2/$t/whl/$ext")"
    if [ "$os" = linux ]; then
      note "$whl" "file list; the extension module's type; auditwheel show (dist.sh): manylinux_2_17"
    else
      note "$whl" "file list; the extension module's type"
    fi
  }
  stage2 aarch64-unknown-linux-gnu linux-arm64-gnu 'ELF 64-bit LSB .*ARM aarch64'
  stage2 x86_64-apple-darwin darwin-x64 'Mach-O 64-bit .*x86_64'
  stage2 aarch64-apple-darwin darwin-arm64 'Mach-O 64-bit .*arm64'
  lap "aarch64 Linux and macOS checked"
fi

echo "== dist: the NuGet package (file list, binary types; the Linux library under Mono)"
nupkg=$(one "Kepmlog.$version.nupkg")
unzip -Z1 "$dist/$nupkg" >"$work/nupkg.txt"
for f in Kepmlog.nuspec '[Content_Types].xml' _rels/.rels lib/netstandard2.0/Kepmlog.dll \
  lib/netstandard2.0/Kepmlog.dll.config lib/netstandard2.0/Kepmlog.xml README.md LICENSE; do
  grep -qxF "$f" "$work/nupkg.txt" || fail "$nupkg has no $f"
done
# Exactly the runtimes of the targets dist.sh built, each of its own binary type.
declare -A rid_file=([linux-x64]="libkepmlog.so:ELF 64-bit LSB shared object, x86-64"
  [linux-arm64]="libkepmlog.so:ELF 64-bit LSB .*ARM aarch64"
  [osx-x64]="libkepmlog.dylib:Mach-O 64-bit .*x86_64" [osx-arm64]="libkepmlog.dylib:Mach-O 64-bit .*arm64"
  [win-x64]="kepmlog.dll:PE32\+ executable \(DLL\).*x86-64")
want_rids=(linux-x64 win-x64)
[ "$targets" != all ] || want_rids+=(linux-arm64 osx-x64 osx-arm64)
got_rids=$(sed -n 's|^runtimes/\([^/]*\)/native/.*|\1|p' "$work/nupkg.txt" | sort -u | tr '\n' ' ')
[ "$got_rids" = "$(printf '%s\n' "${want_rids[@]}" | sort | tr '\n' ' ')" ] ||
  fail "$nupkg has runtimes $got_rids, want ${want_rids[*]}"
mkdir -p "$work/nupkg"
(cd "$work/nupkg" && unzip -q "$dist/$nupkg")
for rid in "${want_rids[@]}"; do
  f=runtimes/$rid/native/${rid_file[$rid]%%:*}
  grep -Eq "${rid_file[$rid]#*:}" <<<"$(file -b "$work/nupkg/$f")" ||
    fail "$nupkg: $f is $(file -b "$work/nupkg/$f"), want ${rid_file[$rid]#*:}"
done
grep -q "<version>$version</version>" "$work/nupkg/Kepmlog.nuspec" || fail "$nupkg: the nuspec's version is not $version"
# An application's output as NuGet lays it out (the assembly, its config, runtimes/ below
# them), nothing else: the example tool compiled against the packaged assembly, run with Mono.
app=$work/nuget-app
mkdir -p "$app"
cp "$work/nupkg/lib/netstandard2.0/Kepmlog.dll" "$work/nupkg/lib/netstandard2.0/Kepmlog.dll.config" "$app/"
cp -r "$work/nupkg/runtimes" "$app/"
mcs -nologo -langversion:7 -r:"$app/Kepmlog.dll" -r:System.Core.dll -out:"$app/secret-scanner-dotnet.exe" examples/dotnet/SecretScanner.cs
LD_LIBRARY_PATH= run_scanner "C# example (NuGet package, Mono)" secret-scanner-dotnet secret-scanner-dotnet \
  mono "$app/secret-scanner-dotnet.exe"
note "$nupkg" "file list, runtimes ${want_rids[*]} by type; C# example delivered under Mono with the package's linux-x64 library"

echo "== dist: the sdist"
sdist=$(one "kepmlog-$version.tar.gz")
tar -tzf "$dist/$sdist" >"$work/sdist.txt"
for p in pyproject.toml PKG-INFO; do
  grep -qx "kepmlog-$version/$p" "$work/sdist.txt" || fail "$sdist has no $p"
done
grep -q "^kepmlog-$version/.*core/src/lib.rs\$" "$work/sdist.txt" || fail "$sdist does not carry the core's sources"
note "$sdist" "file list (pyproject.toml, PKG-INFO, the core's sources)"
lap "all checked"

echo
printf '%-62s %10s  %s\n' artifact bytes "checked by"
for f in "$dist"/*; do
  b=$(basename "$f")
  printf '%-62s %10s  %s\n' "$b" "$(stat -c %s "$f")" "${checked[$b]:-}"
done
echo "== dist: all passed in $((SECONDS - started))s"
