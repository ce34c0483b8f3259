#!/usr/bin/env bash
# Builds the prebuilt artifacts of a release into dist/ (from a clean checkout; the version is
# the workspace's, Cargo.toml [workspace.package]):
#
#   scripts/dist.sh [--targets T1,T2,...]   (default: x86_64-unknown-linux-gnu,x86_64-pc-windows-gnu)
#
#   x86_64-unknown-linux-gnu
#     kepmlog-V-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl  (maturin --zig,
#         checked with auditwheel show)
#     kepmlog-linux-x64-gnu-V.tgz    npm platform package (os linux, cpu x64, libc glibc)
#     kepmlog-V-x86_64-unknown-linux-gnu.tar.gz     C/C++/Go SDK (make -C ffi install)
#     (the wheel, the addon and libkepmlog.so are linked with zig for glibc 2.17, checked)
#     kepmlog-cli-V-x86_64-unknown-linux-musl.tar.gz  the CLI, static musl (scripts/cross.sh)
#   x86_64-pc-windows-gnu (MinGW)
#     kepmlog-V-cp39-abi3-win_amd64.whl
#     kepmlog-win32-x64-gnu-V.tgz    npm platform package (os win32, cpu x64)
#     kepmlog-V-x86_64-pc-windows-gnu.zip            C/C++/Go SDK (DLL, import library, .def)
#     kepmlog-cli-V-x86_64-pc-windows-gnu.zip        kepmlog.exe
#   aarch64-unknown-linux-gnu, x86_64-apple-darwin, aarch64-apple-darwin (cargo-zigbuild, zig;
#   not run here: no such machine; checked by file type, tags and symbols in check-dist.sh)
#     kepmlog-V-cp39-abi3-manylinux_2_17_aarch64.manylinux2014_aarch64.whl  (maturin --zig,
#         auditwheel show), kepmlog-V-cp39-abi3-macosx_10_12_x86_64.whl,
#         kepmlog-V-cp39-abi3-macosx_11_0_arm64.whl
#     kepmlog-linux-arm64-gnu-V.tgz, kepmlog-darwin-x64-V.tgz, kepmlog-darwin-arm64-V.tgz
#     kepmlog-V-TARGET.tar.gz        C/C++/Go SDK (libkepmlog.a and libkepmlog.so / .dylib)
#     kepmlog-cli-V-TARGET.tar.gz    the CLI (aarch64 Linux: glibc 2.17 and later)
#   always
#     Kepmlog.V.nupkg                the .NET package: lib/netstandard2.0/Kepmlog.dll (compiled
#                                    with Mono's mcs against its 4.x profile, see
#                                    bindings/dotnet/README.md) and runtimes/{rid}/native/ of the
#                                    targets built in this run
#     kepmlog-V.tar.gz               the Python sdist (maturin sdist)
#     kepmlog-V.tgz                  the main npm package (optionalDependencies on the
#                                    platform packages of the targets built; no install script)
#     SHA256SUMS
#
# Builds go to target/ (release, the profile scripts/cross.sh uses, so what
# scripts/test-cross.sh built is reused); staging in target/dist-stage. scripts/check-dist.sh
# checks the result.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
tdir=${CARGO_TARGET_DIR:-$repo/target}
dist=$repo/dist
stage=$tdir/dist-stage
linux=x86_64-unknown-linux-gnu
win=x86_64-pc-windows-gnu
musl=x86_64-unknown-linux-musl
arm=aarch64-unknown-linux-gnu
macs=(x86_64-apple-darwin aarch64-apple-darwin)
supported=("$linux" "$win" "$arm" "${macs[@]}")
# Pinned tool versions: zig and cargo-zigbuild as scripts/test-cross.sh (same venv).
zig_pins=("ziglang==0.17.1" "cargo-zigbuild==0.24.1")
dist_pins=("maturin==1.16.0" "auditwheel==6.8.2")
node_win_version=20.20.2
# Shipped binaries need no debug info; also scripts/cross.sh's setting, so its builds are reused.
export CARGO_PROFILE_RELEASE_DEBUG=0
export CARGO_ZIGBUILD_CACHE_DIR=${CARGO_ZIGBUILD_CACHE_DIR:-$tdir/zigbuild-cache}

die() { echo "dist: $*" >&2; exit 1; }
usage() { echo "usage: scripts/dist.sh [--targets T1,T2,...|all] (supported: ${supported[*]}; default: $linux,$win)" >&2; exit 2; }

targets=("$linux" "$win")
while [ $# -gt 0 ]; do
  case $1 in
    --targets) [ $# -ge 2 ] || usage; IFS=, read -r -a targets <<<"$2"; shift 2 ;;
    --targets=*) IFS=, read -r -a targets <<<"${1#--targets=}"; shift ;;
    -h|--help) usage ;;
    *) echo "dist: unknown argument $1" >&2; usage ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || usage
[ "${targets[*]}" != all ] || targets=("${supported[@]}")
for t in "${targets[@]}"; do
  case " ${supported[*]} " in *" $t "*) continue ;; esac
  die "unknown target $t (supported: ${supported[*]}, or all)"
done
want() { case " ${targets[*]} " in *" $1 "*) return 0 ;; esac; return 1; }

echo "== dist: tools"
. scripts/lib.sh
specs=(make:make pkg-config:pkg-config npm:npm node:nodejs zip:zip objdump:binutils strip:binutils python3-venv
  mcs:mono-mcs)
want "$win" && specs+=(x86_64-w64-mingw32-gcc:gcc-mingw-w64-x86-64 x86_64-w64-mingw32-dlltool:binutils-mingw-w64-x86-64)
# This machine's binutils read x86 only: aarch64's strip and objdump for its libraries.
want "$arm" && specs+=(aarch64-linux-gnu-strip:binutils-aarch64-linux-gnu)
need_tools dist "${specs[@]}"

version=$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
[ -n "$version" ] || die "no version in Cargo.toml [workspace.package]"
v=$(node -p "require('./bindings/node/package.json').version")
[ "$v" = "$version" ] ||
  die "bindings/node/package.json has version $v, the workspace $version: make them equal"
grep -q "^version = \"$version\"" bindings/python/pyproject.toml ||
  die "bindings/python/pyproject.toml's version is not the workspace's $version: make them equal"
installed=$(rustup target list --installed 2>/dev/null) || die "rustup not found: install Rust (https://rustup.rs)"
missing=()
rust_targets=("${targets[@]}")
want "$linux" && rust_targets+=("$musl")   # the CLI
for t in "${rust_targets[@]}"; do grep -qx "$t" <<<"$installed" || missing+=("$t"); done
[ ${#missing[@]} -eq 0 ] || rustup target add "${missing[@]}"
zig_venv=$tdir/zig-venv
if ! "$zig_venv/bin/python" -m ziglang version >/dev/null 2>&1 || [ ! -x "$zig_venv/bin/cargo-zigbuild" ]; then
  python3 -m venv "$zig_venv"
  "$zig_venv/bin/python" -m pip install --quiet --disable-pip-version-check "${zig_pins[@]}"
fi
dist_venv=$tdir/dist-venv
if ! "$dist_venv/bin/maturin" --version 2>/dev/null | grep -qx "maturin ${dist_pins[0]#maturin==}"; then
  python3 -m venv "$dist_venv"
  "$dist_venv/bin/python" -m pip install --quiet --disable-pip-version-check "${dist_pins[@]}"
fi
export PATH=$zig_venv/bin:$PATH
export CARGO_ZIGBUILD_PYTHON_PATH=$zig_venv/bin/python
maturin=$dist_venv/bin/maturin

rm -rf "$dist" "$stage"
mkdir -p "$dist" "$stage"

# The binutils that read TARGET's binaries (this machine's read x86 only).
binutil() { case $1 in aarch64-unknown-linux-gnu) echo "aarch64-linux-gnu-$2" ;; *) echo "$2" ;; esac; }

# Fails unless the shared object FILE of TARGET needs glibc 2.17 at most (manylinux2014).
glibc_max() {
  local max
  max=$("$(binutil "$2" objdump)" -T "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
  [ -n "$max" ] || die "$1 has no versioned glibc symbols (objdump -T)"
  [ "$(printf '%s\n2.17\n' "$max" | sort -V | tail -n 1)" = 2.17 ] ||
    die "$1 needs glibc $max; it must run on glibc 2.17 (manylinux2014)"
}

# The kind of TARGET's OS: linux, macos or windows.
os_kind() { case $1 in *-linux-*) echo linux ;; *-apple-*) echo macos ;; *) echo windows ;; esac; }

# The SDK of one target from `make -C ffi install`, made relocatable, with LICENSE and README.
# The Node addon (and, but for x86_64 Linux whose CLI is the static musl one, the CLI) is built
# in the same cargo run: one feature resolution, the dependencies built once.
sdk() {
  local t=$1 kind name="kepmlog-$version-$1" dir packages="-p kepmlog-ffi -p kepmlog-node"
  kind=$(os_kind "$t")
  dir=$stage/sdk/$name
  [ "$t" = "$linux" ] || packages+=" -p kepmlog-cli"
  echo "== dist $t: C/C++/Go SDK ($name)"
  case $kind in
    linux)
      # Linked with zig against glibc 2.17, as the wheel: libkepmlog.so runs wherever
      # manylinux2014 does (a build on this machine would need its own glibc).
      make -s -C ffi install TARGET="$t.2.17" OUT="$tdir/$t/release" STRIP="$(binutil "$t" strip)" \
        CARGO_BUILD="cargo zigbuild" CARGO_PACKAGES="$packages" PREFIX="$dir" ;;
    macos)
      make -s -C ffi install TARGET="$t" CARGO_BUILD="cargo zigbuild" CARGO_PACKAGES="$packages" \
        PREFIX="$dir" ;;
    windows)
      # What scripts/cross.sh builds for scripts/test-cross.sh: found up to date there.
      make -s -C ffi install TARGET="$t" PREFIX="$dir" \
        CARGO_PACKAGES="-p kepmlog-ffi -p kepmlog-cli -p secret-scanner" ;;
  esac
  sed -i 's|^prefix=.*|prefix=${pcfiledir}/../..|' "$dir"/lib/pkgconfig/*.pc
  if grep -rIl -- "$dir" "$dir" >/dev/null; then
    die "$name still names its build path in: $(grep -rIl -- "$dir" "$dir" | tr '\n' ' ')"
  fi
  [ "$kind" != linux ] || glibc_max "$dir/lib/libkepmlog.so.$version" "$t"
  cp LICENSE "$dir/LICENSE"
  sdk_readme "$t" "$kind" >"$dir/README.md"
  if [ "$kind" = windows ]; then
    (cd "$stage/sdk" && zip -qr "$dist/$name.zip" "$name")
  else
    tar -C "$stage/sdk" --owner=0 --group=0 -czf "$dist/$name.tar.gz" "$name"
  fi
}

sdk_readme() {
  local t=$1 kind=$2 libs
  libs=$(sed -n 's/^Libs: \${libdir}\/libkepmlog.a //p' "$stage/sdk/kepmlog-$version-$t/lib/pkgconfig/kepmlog-static.pc")
  cat <<EOF
# kepmlog $version C/C++/Go SDK for $t

Log from a Keeper Privilege Manager job task to the agent's KeeperLogger topic. The API is in
include/kepmlog.h (C) and include/kepmlog.hpp (C++11 header-only wrapper), with
include/kepmlog_spdlog.hpp, an spdlog sink (header-only; needs spdlog 1.x, C++11). The directory
can be moved anywhere: pkg-config and CMake find it relative to their own files.

## Link line

EOF
  if [ "$kind" = macos ]; then
    cat <<EOF
Built for macOS ${t%%-*} (cross-linked with zig; the dylib's install name is
@rpath/libkepmlog.${version%%.*}.dylib).
- static (one self-contained binary):
  \`cc tool.c -I\$SDK/include \$SDK/lib/libkepmlog.a $libs\`
  or \`PKG_CONFIG_PATH=\$SDK/lib/pkgconfig pkg-config --cflags --libs kepmlog-static\`
- shared: \`cc tool.c -I\$SDK/include -DKEPMLOG_SHARED -L\$SDK/lib -lkepmlog -Wl,-rpath,\$SDK/lib\`
  or \`pkg-config --cflags --libs kepmlog\`
EOF
  elif [ "$kind" = linux ]; then
    cat <<EOF
Linked for glibc 2.17 and later (any manylinux2014 system).
- static (one self-contained binary):
  \`cc -std=c99 tool.c -I\$SDK/include \$SDK/lib/libkepmlog.a $libs\`
  or \`PKG_CONFIG_PATH=\$SDK/lib/pkgconfig pkg-config --cflags --libs kepmlog-static\`
- shared: \`cc tool.c -I\$SDK/include -DKEPMLOG_SHARED -L\$SDK/lib -lkepmlog -Wl,-rpath,\$SDK/lib\`
  or \`pkg-config --cflags --libs kepmlog\` (libkepmlog.so.${version%%.*} must be found at run time)
EOF
  else
    cat <<EOF
Built with MinGW-w64 (x86_64-w64-mingw32).
- static (one self-contained .exe):
  \`x86_64-w64-mingw32-gcc tool.c -I\$SDK/include \$SDK/lib/libkepmlog.a $libs\`
  or \`PKG_CONFIG_PATH=\$SDK/lib/pkgconfig pkg-config --cflags --libs kepmlog-static\`
- DLL: \`x86_64-w64-mingw32-gcc tool.c -I\$SDK/include -DKEPMLOG_SHARED -L\$SDK/lib -lkepmlog\`
  (links lib/libkepmlog.dll.a) and ship bin/kepmlog.dll next to the .exe.
- MSVC: only the DLL; make its import library from lib/kepmlog.def:
  \`lib /def:kepmlog.def /machine:x64 /out:kepmlog.lib\`
EOF
  fi
  cat <<EOF

CMake: \`find_package(kepmlog $version REQUIRED)\` with \`-DCMAKE_PREFIX_PATH=\$SDK\`, then link
\`kepmlog::static\`, \`kepmlog::shared\` or \`kepmlog::kepmlog\` (static with -DKEPMLOG_STATIC=ON).

Go (cgo): \`PKG_CONFIG_PATH=\$SDK/lib/pkgconfig go build\` in a module that requires the
kepmlog Go package (it links kepmlog-static through pkg-config).

Licensed under the Apache License 2.0 (LICENSE).
EOF
}

# One npm platform package: package.json, the addon and a README, packed into dist/.
node_platform() {
  local id=$1 os=$2 libc=$3 addon=$4 cpu=${1#*-} dir=$stage/npm/kepmlog-$1
  cpu=${cpu%%-*}
  echo "== dist: npm platform package kepmlog-$id"
  mkdir -p "$dir"
  cp "$addon" "$dir/kepmlog.$id.node"
  ID=$id OS=$os CPU=$cpu LIBC=$libc VERSION=$version node -e '
    const e = process.env;
    const pkg = {
      name: `kepmlog-${e.ID}`, version: e.VERSION,
      description: `The prebuilt native addon of kepmlog for ${e.ID} (installed by the kepmlog package)`,
      license: "Apache-2.0", main: `kepmlog.${e.ID}.node`, files: [`kepmlog.${e.ID}.node`, "README.md"],
      os: [e.OS], cpu: [e.CPU], engines: { node: ">=18" },
    };
    if (e.LIBC) pkg.libc = [e.LIBC];
    process.stdout.write(JSON.stringify(pkg, null, 2) + "\n");' >"$dir/package.json"
  printf '# kepmlog-%s\n\nThe prebuilt native addon of [kepmlog](https://www.npmjs.com/package/kepmlog) for %s.\nInstall `kepmlog`, which depends on it; do not use this package directly.\n' \
    "$id" "$id" >"$dir/README.md"
  (cd "$dist" && npm pack --silent --ignore-scripts "$dir" >/dev/null)
}

node_packages=()

# The npm platform package of a Linux or macOS target from the addon the SDK's build made.
node_addon() {
  local t=$1 id=$2 os=$3 libc=$4 lib
  if [ "$os" = darwin ]; then
    # Mach-O keeps its symbols: this machine's binutils cannot strip it.
    lib=$tdir/$t/release/libkepmlog_node.dylib
  else
    lib=$stage/libkepmlog_node-$t.so
    "$(binutil "$t" strip)" -g -o "$lib" "$tdir/$t/release/libkepmlog_node.so"
    glibc_max "$lib" "$t"
  fi
  node_platform "$id" "$os" "$libc" "$lib"
  node_packages+=("$id")
}

# kepmlog-cli-V-TARGET.tar.gz (.zip for Windows) holding the CLI binary BIN and LICENSE.
cli_archive() {
  local t=$1 bin=$2 name=kepmlog-cli-$version-$1
  echo "== dist $t: CLI ($name)"
  rm -rf "$stage/cli/$name"
  mkdir -p "$stage/cli/$name"
  install -m 755 "$bin" "$stage/cli/$name/"
  cp LICENSE "$stage/cli/$name/"
  if [ "$(os_kind "$t")" = windows ]; then
    (cd "$stage/cli" && zip -qr "$dist/$name.zip" "$name")
  else
    tar -C "$stage/cli" --owner=0 --group=0 -czf "$dist/$name.tar.gz" "$name"
  fi
}

# The abi3 wheel of a Linux or macOS target, linked with zig (manylinux2014 on Linux,
# checked with auditwheel).
wheel_zig() {
  local t=$1 arch=${1%%-*} whl
  echo "== dist $t: Python wheel (zig)"
  # A target dir of its own: maturin's zig flags (linker-plugin-lto) differ from
  # cargo-zigbuild's, and sharing one would rebuild the other's dependencies every time.
  if [ "$(os_kind "$t")" = linux ]; then
    CARGO_TARGET_DIR=$tdir/wheel-zig "$maturin" build --quiet --release --locked --zig \
      --compatibility manylinux2014 --target "$t" -m bindings/python/Cargo.toml --out "$stage/wheels"
    whl=$(one_file "$stage/wheels/kepmlog-$version-cp39-abi3-manylinux*_$arch.whl")
    "$dist_venv/bin/auditwheel" show "$whl" | tee "$stage/auditwheel-$t.txt"
    grep -q "manylinux_2_17_$arch" "$stage/auditwheel-$t.txt" ||
      die "auditwheel: the $t wheel is not manylinux2014 (manylinux_2_17) compliant"
  else
    CARGO_TARGET_DIR=$tdir/wheel-zig "$maturin" build --quiet --release --locked --zig \
      --target "$t" -m bindings/python/Cargo.toml --out "$stage/wheels"
    [ "$arch" = aarch64 ] && arch=arm64
    whl=$(one_file "$stage/wheels/kepmlog-$version-cp39-abi3-macosx_*_$arch.whl")
  fi
  cp "$whl" "$dist/"
}

# The one file matching GLOB; fails on none or several.
one_file() {
  local f
  # shellcheck disable=SC2086
  set -- $1
  [ $# -eq 1 ] && [ -e "$1" ] || die "expected one file, found: $*"
  echo "$1"
}

if want "$linux"; then
  sdk "$linux"
  wheel_zig "$linux"
  node_addon "$linux" linux-x64-gnu linux glibc
  echo "== dist: CLI for $musl (scripts/cross.sh)"
  scripts/cross.sh "$musl"
  cli_archive "$musl" "$tdir/$musl/kepmlog-prefix/bin/kepmlog"
fi

if want "$win"; then
  sdk "$win"
  cli_archive "$win" "$tdir/$win/release/kepmlog.exe"

  echo "== dist $win: Python wheel (win_amd64, MinGW)"
  "$maturin" build --quiet --release --locked --target "$win" -m bindings/python/Cargo.toml \
    --out "$stage/wheels"
  cp "$stage/wheels/kepmlog-$version-cp39-abi3-win_amd64.whl" "$dist/"

  echo "== dist $win: Node addon (against node.exe's N-API exports)"
  node_win_libnode "$tdir/node-win" "$node_win_version"
  LIBNODE_PATH=$tdir/node-win/libnode cargo build -q --release --locked --target "$win" -p kepmlog-node
  node_platform win32-x64-gnu win32 "" "$tdir/$win/release/kepmlog_node.dll"
  node_packages+=(win32-x64-gnu)
fi

# aarch64 Linux and macOS: SDK (with the addon and the CLI from the same build), npm platform
# package, CLI archive, wheel. Nothing of them runs here; check-dist.sh checks their types.
for t in "$arm" "${macs[@]}"; do
  want "$t" || continue
  sdk "$t"
  case $t in
    "$arm") id=linux-arm64-gnu os=linux libc=glibc ;;
    x86_64-apple-darwin) id=darwin-x64 os=darwin libc="" ;;
    *) id=darwin-arm64 os=darwin libc="" ;;
  esac
  node_addon "$t" "$id" "$os" "$libc"
  cli_archive "$t" "$tdir/$t/release/kepmlog"
  wheel_zig "$t"
done

# Kepmlog.V.nupkg: the .NET assembly and, in NuGet's runtimes/{rid}/native/ layout, the native
# library of every target this run built (from its SDK directory). A nupkg is a zip with a
# .nuspec at its root; [Content_Types].xml and _rels/.rels make it a valid OPC package too.
nupkg() {
  local dir=$stage/nuget t rid src dst rids=()
  rm -rf "$dir"
  mkdir -p "$dir/lib/netstandard2.0" "$dir/_rels"
  for t in "${targets[@]}"; do
    case $t in
      "$linux") rid=linux-x64 src=lib/libkepmlog.so.$version dst=libkepmlog.so ;;
      "$arm") rid=linux-arm64 src=lib/libkepmlog.so.$version dst=libkepmlog.so ;;
      x86_64-apple-darwin) rid=osx-x64 src=lib/libkepmlog.${version%%.*}.dylib dst=libkepmlog.dylib ;;
      aarch64-apple-darwin) rid=osx-arm64 src=lib/libkepmlog.${version%%.*}.dylib dst=libkepmlog.dylib ;;
      *) rid=win-x64 src=bin/kepmlog.dll dst=kepmlog.dll ;;
    esac
    [ -f "$stage/sdk/kepmlog-$version-$t/$src" ] || die "no $src in the $t SDK for the NuGet package"
    install -D -m 755 "$stage/sdk/kepmlog-$version-$t/$src" "$dir/runtimes/$rid/native/$dst"
    rids+=("$rid")
  done
  echo "== dist: NuGet package Kepmlog.$version.nupkg (runtimes: ${rids[*]})"
  mcs -nologo -langversion:7 -warnaserror+ -optimize+ -target:library \
    -doc:"$dir/lib/netstandard2.0/Kepmlog.xml" -out:"$dir/lib/netstandard2.0/Kepmlog.dll" bindings/dotnet/src/*.cs
  cp bindings/dotnet/Kepmlog.dll.config "$dir/lib/netstandard2.0/"
  cp bindings/dotnet/README.md "$dir/README.md"
  cp LICENSE "$dir/LICENSE"
  cat >"$dir/Kepmlog.nuspec" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">
  <metadata>
    <id>Kepmlog</id>
    <version>$version</version>
    <authors>kepmlog</authors>
    <description>Log from a Keeper Privilege Manager job task to the agent's KeeperLogger topic (TLS MQTT v5), over libkepmlog's C ABI. Native libraries: ${rids[*]}.</description>
    <license type="expression">Apache-2.0</license>
    <readme>README.md</readme>
    <tags>kepm keeper logging mqtt</tags>
    <dependencies>
      <group targetFramework=".NETStandard2.0" />
    </dependencies>
  </metadata>
</package>
EOF
  cat >"$dir/[Content_Types].xml" <<'EOF'
<?xml version="1.0" encoding="utf-8"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
  <Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml" />
  <Default Extension="nuspec" ContentType="application/octet" />
  <Default Extension="dll" ContentType="application/octet" />
  <Default Extension="config" ContentType="application/octet" />
  <Default Extension="xml" ContentType="application/octet" />
  <Default Extension="so" ContentType="application/octet" />
  <Default Extension="dylib" ContentType="application/octet" />
  <Default Extension="md" ContentType="application/octet" />
  <Override PartName="/LICENSE" ContentType="application/octet" />
</Types>
EOF
  cat >"$dir/_rels/.rels" <<'EOF'
<?xml version="1.0" encoding="utf-8"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
  <Relationship Type="http://schemas.microsoft.com/packaging/2010/07/manifest" Target="/Kepmlog.nuspec" Id="R0" />
</Relationships>
EOF
  # -D: no directory entries, as nuget pack writes it
  rm -f "$dist/Kepmlog.$version.nupkg"
  (cd "$dir" && zip -qrXD "$dist/Kepmlog.$version.nupkg" Kepmlog.nuspec '[Content_Types].xml' _rels lib runtimes README.md LICENSE)
}
nupkg

echo "== dist: Python sdist"
"$maturin" sdist -m bindings/python/Cargo.toml --out "$stage/sdist"
cp "$stage/sdist/kepmlog-$version.tar.gz" "$dist/"

echo "== dist: npm main package (kepmlog, optionalDependencies: ${node_packages[*]})"
main=$stage/npm/kepmlog
mkdir -p "$main"
# The package's files as published, but neither an addon nor the install script: the addon
# comes in the platform package, and a packed copy has no cargo workspace to build one from.
(cd bindings/node && node -p 'require("./package.json").files.join("\n")') |
  while read -r f; do
    case $f in kepmlog.node|scripts/build.js) continue ;; esac
    [ -e "bindings/node/$f" ] || die "bindings/node/package.json lists $f, which does not exist"
    install -D -m 644 "bindings/node/$f" "$main/$f"
  done
PLATFORMS="${node_packages[*]}" node -e '
  const pkg = require("./bindings/node/package.json");
  pkg.files = pkg.files.filter((f) => f !== "kepmlog.node" && f !== "scripts/build.js");
  // No install or prepare script (see above), and no test script: the tests are not packed.
  delete pkg.scripts;
  pkg.optionalDependencies = {};
  for (const id of process.env.PLATFORMS.split(" ")) pkg.optionalDependencies[`kepmlog-${id}`] = pkg.version;
  delete pkg.devDependencies;
  process.stdout.write(JSON.stringify(pkg, null, 2) + "\n");' >"$main/package.json"
(cd "$dist" && npm pack --silent --ignore-scripts "$main" >/dev/null)

echo "== dist: SHA256SUMS"
(cd "$dist" && rm -f SHA256SUMS && sha256sum -- * >"$stage/SHA256SUMS" && mv "$stage/SHA256SUMS" SHA256SUMS)
(cd "$dist" && ls -l)
echo "dist: kepmlog $version for ${targets[*]} in $dist"
