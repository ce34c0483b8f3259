#!/usr/bin/env bash
# C and C++ suite: builds libkepmlog once in release, installs it (headers, .a/.so, pkg-config,
# CMake config) into target/kepmlog-prefix, then against that install:
#   - ctest: the C test program (vectors checked at the broker, every bad-input case, 8 threads
#     vs shutdown) on the shared library, under valgrind memcheck, and built with
#     -fsanitize=address,undefined; plus the header compiled as C99, C++11 and C++17 (-Werror);
#   - the C example (pkg-config one-liner) and the C++ example (find_package) installed in
#     target/agent-root/Jobs/bin/ and run once against a devagent.
set -euo pipefail
cd "$(dirname "$0")/.."
export TMPDIR=/tmp
repo=$PWD
target=${CARGO_TARGET_DIR:-$repo/target}
prefix=$target/kepmlog-prefix

need=()
for tool in cmake:cmake valgrind:valgrind pkg-config:pkg-config cc:gcc c++:g++ make:make; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "test-c: installing ${need[*]} (apt-get)" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cargo build -q -p kepm-devagent
export KEPM_DEVAGENT=${KEPM_DEVAGENT:-$target/debug/kepm-devagent}
echo "== c: build and install libkepmlog into $prefix"
make -s -C ffi install PREFIX="$prefix"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig

echo "== c: ctest (suite, valgrind, asan+ubsan, header C99/C++11/C++17)"
build=$target/c-tests
cmake -S tests/c -B "$build" -DCMAKE_PREFIX_PATH="$prefix" -DKEPMLOG_REPO="$repo" \
  -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j2 >/dev/null
ctest --test-dir "$build" --output-on-failure

# Runs an installed example tool the way the agent would (job JSON arguments) against a fresh
# devagent and checks the broker received its summary record and its events.
run_example() {
  local job=$1 tool=$2 work api_base code
  work=$(mktemp -d)
  mkfifo "$work/in"
  "$KEPM_DEVAGENT" serve --allow KeeperLogger --allow "Jobs/$job/events" <"$work/in" >"$work/out" &
  local pid=$!
  exec 3>"$work/in"
  for _ in $(seq 1 300); do grep -q '"event":"ready"' "$work/out" 2>/dev/null && break; sleep 0.1; done
  api_base=$(sed -n 's/.*"api_base":"\([^"]*\)".*/\1/p' "$work/out" | head -n 1)
  [ -n "$api_base" ] || { echo "test-c: the devagent did not start" >&2; return 1; }
  set +e
  (cd "$repo" && KEEPER_JOB_ID=$job KEEPER_JOB_NAME=$job "$tool" "--keeper-api-base=$api_base" examples)
  code=$?
  set -e
  for _ in $(seq 1 50); do grep -q 'Scan complete' "$work/out" && break; sleep 0.1; done
  echo quit >&3; exec 3>&-; wait "$pid" || true
  local records events
  records=$(grep '"topic":"KeeperLogger"' "$work/out" | grep -c '"Source":"SecretScanner"' || true)
  events=$(grep -c "\"topic\":\"Jobs/$job/events\"" "$work/out" || true)
  if [ "$code" -ne 0 ] || ! grep -q 'Scan complete' "$work/out" || [ "$events" -lt 2 ]; then
    echo "test-c: $job did not deliver (exit $code, $records records, $events events)" >&2
    cat "$work/out" >&2; rm -rf "$work"; return 1
  fi
  echo "$job: exit $code, $records records and $events events received by the broker"
  rm -rf "$work"
}

bin=$target/agent-root/Jobs/bin
echo "== c: example tool (pkg-config, static)"
mkdir -p "$bin/secret-scanner-c"
cc -std=c99 -Wall -Wextra -Werror -O2 -o "$bin/secret-scanner-c/secret-scanner-c" \
  examples/c/secret_scanner.c $(pkg-config --cflags --libs kepmlog-static)
run_example secret-scanner-c "$bin/secret-scanner-c/secret-scanner-c"

echo "== c++: example tool (CMake find_package, static)"
cmake -S examples/cpp -B "$target/cpp-example" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$target/cpp-example" -j2 >/dev/null
mkdir -p "$bin/secret-scanner-cpp"
cp "$target/cpp-example/secret-scanner-cpp" "$bin/secret-scanner-cpp/secret-scanner-cpp"
run_example secret-scanner-cpp "$bin/secret-scanner-cpp/secret-scanner-cpp"
echo "== c: all passed"
