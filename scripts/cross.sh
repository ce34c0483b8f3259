#!/usr/bin/env bash
# Cross-builds kepmlog for the platforms KEPM jobs run on, from Linux, in release:
#
#   scripts/cross.sh [TARGET...]     (default: every target below)
#
#   x86_64-pc-windows-gnu      MinGW-w64 (Debian gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64)
#   x86_64-apple-darwin        cargo-zigbuild (zig from PyPI's ziglang); link only here
#   aarch64-apple-darwin       cargo-zigbuild
#   aarch64-unknown-linux-gnu  cargo-zigbuild (glibc 2.17 and later)
#   x86_64-unknown-linux-musl  cargo-zigbuild: a fully static `kepmlog` CLI
#
# For each TARGET, into target/TARGET/:
#   kepmlog-prefix/   `make -C ffi install`: the C ABI (static + shared: kepmlog.dll, its
#                     import library and kepmlog.def on Windows; no shared library on musl,
#                     whose Rust target cannot make one), headers, pkg-config, CMake; and the
#                     CLI in bin/ (kepmlog, kepmlog.exe)
#   agent-root/Jobs/bin/{command}/{command}[.exe]   the example job tools: the Rust one
#                     (examples/rust) everywhere; on Windows also C, C++ (CMake) and Go
#                     (cgo), plus target/TARGET/c-shared/ (the C one linked to kepmlog.dll)
#
# Needs the targets' rust-std (rustup target add ...), and the tools named above; it says
# which one is missing. scripts/test-cross.sh installs them all and tests what this builds.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
tdir=${CARGO_TARGET_DIR:-$repo/target}
all=(x86_64-pc-windows-gnu x86_64-apple-darwin aarch64-apple-darwin aarch64-unknown-linux-gnu
  x86_64-unknown-linux-musl)
[ $# -gt 0 ] || set -- "${all[@]}"
# Shipped job binaries need no debug info: smaller files and a shorter build (the release
# profile keeps line tables for the Linux libraries, which `make install` strips instead).
export CARGO_PROFILE_RELEASE_DEBUG=0
# cargo-zigbuild's linker wrappers and stubs live with the build, not in ~/.cache.
export CARGO_ZIGBUILD_CACHE_DIR=${CARGO_ZIGBUILD_CACHE_DIR:-$tdir/zigbuild-cache}

die() { echo "cross: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"; }

for t in "$@"; do
  case " ${all[*]} " in *" $t "*) ;; *) die "unknown target $t (known: ${all[*]})" ;; esac
  rustup target list --installed 2>/dev/null | grep -qx "$t" ||
    die "no Rust standard library for $t: rustup target add $t"
done

# Builds the C ABI, the CLI and the Rust example of one target in one cargo run (one feature
# resolution, dependencies built once), installs the C ABI and the CLI into the target's
# prefix and the Rust tool into its agent root.
build_rust() {
  local t=$1 build=$2 exe=$3 out="$tdir/$1/release" prefix="$tdir/$1/kepmlog-prefix"
  local root="$tdir/$1/agent-root/Jobs/bin"
  echo "== cross $t: C ABI, CLI and Rust example ($build)"
  rm -rf "$prefix"
  make -s -C ffi install TARGET="$t" PREFIX="$prefix" CARGO_BUILD="$build" \
    CARGO_PACKAGES="-p kepmlog-ffi -p kepmlog-cli -p secret-scanner"
  install -D -m 755 "$out/kepmlog$exe" "$prefix/bin/kepmlog$exe"
  install -D -m 755 "$out/secret-scanner$exe" "$root/secret-scanner/secret-scanner$exe"
}

# The Windows C, C++ and Go examples, against the Windows prefix; stripped (-s): the static
# library carries the Rust standard library's debug info.
build_windows_examples() {
  local t=$1 prefix="$tdir/$1/kepmlog-prefix" root="$tdir/$1/agent-root/Jobs/bin"
  need x86_64-w64-mingw32-g++ "apt-get install g++-mingw-w64-x86-64"
  need cmake "apt-get install cmake"
  need pkg-config "apt-get install pkg-config"
  need go "apt-get install golang-go"
  # Only the Windows .pc files: a host package of the same name must not answer.
  local -x PKG_CONFIG_LIBDIR="$prefix/lib/pkgconfig" PKG_CONFIG_PATH=""

  echo "== cross $t: C example (static libkepmlog.a, pkg-config)"
  mkdir -p "$root/secret-scanner-c"
  # shellcheck disable=SC2046
  x86_64-w64-mingw32-gcc -std=c99 -Wall -Wextra -Werror -O2 -s \
    -o "$root/secret-scanner-c/secret-scanner-c.exe" examples/c/secret_scanner.c \
    $(pkg-config --cflags --libs kepmlog-static)

  echo "== cross $t: C example against kepmlog.dll (import library, dllimport)"
  mkdir -p "$tdir/$t/c-shared"
  # shellcheck disable=SC2046
  x86_64-w64-mingw32-gcc -std=c99 -Wall -Wextra -Werror -O2 -s \
    -o "$tdir/$t/c-shared/secret-scanner-c.exe" examples/c/secret_scanner.c \
    $(pkg-config --cflags --libs kepmlog)
  cp "$prefix/bin/kepmlog.dll" "$tdir/$t/c-shared/"   # found next to the program

  echo "== cross $t: C++ example (CMake find_package, static)"
  cmake -S examples/cpp -B "$tdir/$t/cpp-example" -DCMAKE_SYSTEM_NAME=Windows \
    -DCMAKE_CXX_COMPILER=x86_64-w64-mingw32-g++ -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_EXE_LINKER_FLAGS=-s >/dev/null
  cmake --build "$tdir/$t/cpp-example" -j2 >/dev/null
  install -D -m 755 "$tdir/$t/cpp-example/secret-scanner-cpp.exe" \
    "$root/secret-scanner-cpp/secret-scanner-cpp.exe"

  echo "== cross $t: Go example (cgo, static libkepmlog.a)"
  mkdir -p "$root/secret-scanner-go"
  (cd examples/go && GOOS=windows GOARCH=amd64 CGO_ENABLED=1 CC=x86_64-w64-mingw32-gcc \
    GOTOOLCHAIN=local GOFLAGS=-mod=mod go build -ldflags="-s -w" \
    -o "$root/secret-scanner-go/secret-scanner-go.exe" .)
}

for t in "$@"; do
  case $t in
    *-windows-gnu)
      need x86_64-w64-mingw32-gcc "apt-get install gcc-mingw-w64-x86-64"
      build_rust "$t" "cargo build" .exe
      build_windows_examples "$t"
      ;;
    *)
      cargo zigbuild --help >/dev/null 2>&1 || die "cargo-zigbuild not found: pip install cargo-zigbuild ziglang (or cargo install cargo-zigbuild --locked)"
      command -v zig >/dev/null 2>&1 || "${CARGO_ZIGBUILD_PYTHON_PATH:-python3}" -m ziglang version >/dev/null 2>&1 ||
        die "zig not found: pip install ziglang"
      build_rust "$t" "cargo zigbuild" ""
      ;;
  esac
  echo "cross $t: built into $tdir/$t/{kepmlog-prefix,agent-root}"
done
