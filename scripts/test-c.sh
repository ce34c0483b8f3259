#!/usr/bin/env bash
# C and C++ suite: builds libkepmlog once in release, installs it (headers, .a/.so, pkg-config,
# CMake config) into target/kepmlog-prefix, then against that install:
#   - ctest: the C test program (vectors checked at the broker, every bad-input case, 8 threads
#     vs shutdown) on the shared library, under valgrind memcheck, and built with
#     -fsanitize=address,undefined; plus the header compiled as C99, C++11 and C++17 (-Werror);
#   - ctest: the spdlog sink (kepmlog_spdlog.hpp, Debian's libspdlog-dev) against the devagent;
#   - the C example (pkg-config one-liner) and the C++ example (find_package) built and installed
#     in target/agent-root/Jobs/bin/, where test-jobs.sh runs them through their job files.
set -euo pipefail
cd "$(dirname "$0")/.."
export TMPDIR=/tmp
repo=$PWD
target=${CARGO_TARGET_DIR:-$repo/target}
prefix=$target/kepmlog-prefix

. scripts/lib.sh
need_tools test-c cmake:cmake valgrind:valgrind pkg-config:pkg-config cc:gcc c++:g++ make:make \
  /usr/include/spdlog/spdlog.h:libspdlog-dev

export KEPM_DEVAGENT=${KEPM_DEVAGENT:-$target/debug/kepm-devagent}
# scripts/test.sh built it with the workspace; `-p` alone would resolve features anew.
[ -x "$KEPM_DEVAGENT" ] || cargo build -q --locked -p kepm-devagent
echo "== c: build and install libkepmlog into $prefix"
make -s -C ffi install PREFIX="$prefix"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig

echo "== c: ctest (suite, valgrind, asan+ubsan, spdlog sink, header C99/C++11/C++17)"
build=$target/c-tests
cmake -S tests/c -B "$build" -DCMAKE_PREFIX_PATH="$prefix" -DKEPMLOG_REPO="$repo" \
  -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j2 >/dev/null
ctest --test-dir "$build" --output-on-failure

bin=$target/agent-root/Jobs/bin
# The example tools are only built and installed here: test-jobs.sh runs every example job.
echo "== c: example tool (pkg-config, static)"
mkdir -p "$bin/secret-scanner-c"
cc -std=c99 -Wall -Wextra -Werror -O2 -o "$bin/secret-scanner-c/secret-scanner-c" \
  examples/c/secret_scanner.c $(pkg-config --cflags --libs kepmlog-static)

echo "== c++: example tool (CMake find_package, static)"
cmake -S examples/cpp -B "$target/cpp-example" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$target/cpp-example" -j2 >/dev/null
mkdir -p "$bin/secret-scanner-cpp"
cp "$target/cpp-example/secret-scanner-cpp" "$bin/secret-scanner-cpp/secret-scanner-cpp"
echo "== c: all passed"
